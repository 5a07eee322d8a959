"""Every statement's proof and the LaTeX report, computed once per test process.

The files that prove every statement share one worker under ``--dist loadgroup`` (see
conftest's ``PROVING_EVERY_STATEMENT``); tests there that check what is *done* with the
proofs (the CLI's JSON, the report's file and its typesetting) take them from here, once, at
the CLI's default order, instead of proving all statements again at an order of their own.
How the proofs come out is tested in tests/test_statements.py, from the same memo; the tests
that plant a violation call ``Statement.prove`` themselves, never this memo.
"""

import functools
from unittest import mock

import derive.cli
import derive.report
from derive import STATEMENTS

#: The order of ``python -m derive prove`` and ``report`` by default.
ORDER = 4

_REPORT_DOCUMENT = derive.report.report_document  # before patch() replaces it


def proof(statement_id, order=ORDER):
    """``STATEMENTS[statement_id].prove(order=order)``, once."""
    return _proof(statement_id, order)


@functools.lru_cache(maxsize=None)
def _proof(statement_id, order):
    return STATEMENTS[statement_id].prove(order=order)


class _Once:
    """A statement whose ``prove`` answers from :func:`proof` (all else is the statement's)."""

    def __init__(self, statement_id):
        self.statement_id = statement_id

    def prove(self, *, order=ORDER):
        return proof(self.statement_id, order)

    def __getattr__(self, name):
        return getattr(STATEMENTS[self.statement_id], name)


def statements():
    """The registry, in order, with every ``prove`` answered from :func:`proof`."""
    return {statement_id: _Once(statement_id) for statement_id in STATEMENTS}


def report_document(*, order=ORDER):
    """``derive.report.report_document(order=order)`` from the proofs of :func:`proof`, once."""
    return _report_document(order)


@functools.lru_cache(maxsize=None)
def _report_document(order):
    with mock.patch.object(derive.report, "STATEMENTS", statements()):
        return _REPORT_DOCUMENT(order=order)


def patch(monkeypatch):
    """Make the CLI's ``prove`` and ``report`` (and ``write_report``) use the proofs from here."""
    monkeypatch.setattr(derive.cli, "STATEMENTS", statements())
    monkeypatch.setattr(derive.report, "report_document", report_document)
