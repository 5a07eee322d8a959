"""Hostile logits files, on every entry point that reads them: ``derive bound`` (``--teacher``,
``--student``) and ``verify regime`` (``--logits``, ``--student``), both through
:func:`derive._logits.read_logits`.

Each case is exit code 2 and one line on stderr naming the file and what is wrong, before the
data is read (a FIFO never blocks, a huge header or shape is refused from the header), and
nothing on stdout. Both commands accept the same good files (``.npy`` and ``.pt``).
"""

import json
import os
import warnings
from pathlib import Path

import forkrun
import numpy
import pytest
import torch

import derive.cli
import verify.cli
from derive._errors import DeriveError
from derive._logits import MAX_HEADER_BYTES, read_logits
from derive.bounds import MAX_BOUND_CLASSES, MAX_BOUND_VALUES
from verify._errors import VerifyError

ROOT = Path(__file__).resolve().parents[1]


def _npy_with_header(path, header, data=b""):
    """A version-2 .npy file with ``header`` (a dict's text), padded as numpy pads it."""
    text = header.encode("latin1")
    text += b" " * (-(12 + len(text) + 1) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x02\x00" + len(text).to_bytes(4, "little") + text + data)


def _save_pt(path, value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(value, path)


def _quantized():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.quantize_per_tensor(torch.rand(3, 4), 0.1, 0, torch.quint8)


def _nested():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.nested.nested_tensor([torch.rand(2, 4), torch.rand(1, 4)])


#: name -> (writer(path), suffix, message fragment).
HOSTILE_FILES = {
    "directory": (lambda p: p.mkdir(), ".npy", "is a directory, not a regular file"),
    "missing": (lambda p: None, ".npy", "no such file"),
    "fifo": (lambda p: os.mkfifo(p), ".npy", "is a FIFO (named pipe), not a regular file"),
    "not_npy": (lambda p: p.write_bytes(b"hello"), ".npy", "is not a .npy file"),
    "huge_header": (
        lambda p: _npy_with_header(p, "{" + " " * (MAX_HEADER_BYTES * 10) + "}"),
        ".npy",
        f"at most {MAX_HEADER_BYTES}",
    ),
    "huge_shape": (
        lambda p: _npy_with_header(
            p, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }"
        ),
        ".npy",
        "at most",
    ),
    "truncated": (
        lambda p: _npy_with_header(
            p, "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 4), }", b"\x00" * 8
        ),
        ".npy",
        "its header says 128",
    ),
    "long_double": (
        lambda p: numpy.save(p, numpy.zeros((2, 3), dtype=numpy.longdouble)),
        ".npy",
        "got dtype float128",
    ),
    "complex": (
        lambda p: numpy.save(p, numpy.zeros((2, 3), dtype=numpy.complex128)),
        ".npy",
        "got dtype complex128",
    ),
    "bool": (lambda p: numpy.save(p, numpy.zeros((2, 3), dtype=bool)), ".npy", "got dtype bool"),
    "object": (
        lambda p: numpy.save(p, numpy.array([[1, "a"], [2, "b"]], dtype=object)),
        ".npy",
        "holds Python objects",
    ),
    "three_dimensional": (lambda p: numpy.save(p, numpy.zeros((2, 3, 4))), ".npy", "[B, N]"),
    "nan": (lambda p: numpy.save(p, numpy.array([[0.0, numpy.nan]])), ".npy", "must be finite"),
    "sparse_pt": (lambda p: _save_pt(p, torch.eye(3).to_sparse()), ".pt", "sparse_coo tensor"),
    "sparse_csr_pt": (
        lambda p: _save_pt(p, torch.eye(3).to_sparse_csr()),
        ".pt",
        "sparse_csr tensor",
    ),
    "meta_pt": (lambda p: _save_pt(p, torch.empty(3, 4, device="meta")), ".pt", "a meta tensor"),
    "quantized_pt": (lambda p: _save_pt(p, _quantized()), ".pt", "a quantized tensor"),
    "nested_pt": (lambda p: _save_pt(p, _nested()), ".pt", "a nested tensor"),
    "complex_pt": (lambda p: _save_pt(p, torch.zeros(3, 4, dtype=torch.complex64)), ".pt", "dtype"),
    "dict_pt": (lambda p: _save_pt(p, {"logits": torch.zeros(3, 4)}), ".pt", "one tensor"),
    "pickle_pt": (
        lambda p: p.write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94."),
        ".pt",
        "is not a saved tensor",
    ),
}


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.npy"
    numpy.save(path, numpy.random.default_rng(0).normal(size=(2, 3)))
    return path


@pytest.mark.parametrize("name", sorted(n for n in HOSTILE_FILES if n != "fifo"))
def test_bad_files_are_one_line_on_every_reader(tmp_path, capsys, good_file, name):
    writer, suffix, fragment = HOSTILE_FILES[name]
    path = tmp_path / f"bad{suffix}"
    writer(path)
    commands = [
        (
            derive.cli.main,
            ["bound", "--teacher", str(path), "--student", str(good_file)]
            + ["--temperature", "8", "--order", "1"],
        ),
        (
            derive.cli.main,
            ["bound", "--teacher", str(good_file), "--student", str(path)]
            + ["--temperature", "8", "--order", "1"],
        ),
        (verify.cli.main, ["regime", "--logits", str(path)]),
        (verify.cli.main, ["regime", "--logits", str(good_file), "--student", str(path)]),
    ]
    for main, argv in commands:
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert fragment in err, err
        assert "bad" in err  # the file is named


@pytest.mark.parametrize("error", [DeriveError, VerifyError])
@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_the_reader_raises_the_packages_error(tmp_path, name, error):
    writer, suffix, fragment = HOSTILE_FILES[name]
    path = tmp_path / f"bad{suffix}"
    writer(path)
    with pytest.raises(error) as raised:
        read_logits(path, option="--logits", max_values=MAX_BOUND_VALUES, error=error)
    assert fragment in str(raised.value)


def test_a_fifo_never_blocks_a_real_process(tmp_path):
    fifo = tmp_path / "teacher.npy"
    os.mkfifo(fifo)
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    for argv in (
        ["-m", "derive", "bound", "--teacher", str(fifo), "--student", str(fifo)]
        + ["--temperature", "8", "--order", "1"],
        ["-m", "verify", "regime", "--logits", str(fifo)],
    ):
        process = forkrun.run([*argv], capture_output=True, text=True, env=environment, timeout=120)
        assert process.returncode == 2 and process.stdout == ""
        assert "is a FIFO (named pipe), not a regular file" in process.stderr


def test_both_commands_accept_the_same_files(tmp_path, capsys):
    rng = numpy.random.default_rng(1)
    teacher, student = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    outputs = {}
    for suffix, save in (
        (".npy", numpy.save),
        (".pt", lambda p, a: torch.save(torch.from_numpy(a).to(torch.float32), p)),
    ):
        teacher_path, student_path = tmp_path / f"t{suffix}", tmp_path / f"s{suffix}"
        save(teacher_path, teacher.astype(numpy.float32))
        save(student_path, student.astype(numpy.float32))
        argv = ["bound", "--teacher", str(teacher_path), "--student", str(student_path)]
        assert derive.cli.main([*argv, "--temperature", "8", "--order", "1", "--json"]) == 0
        outputs["bound", suffix] = json.loads(capsys.readouterr().out)
        argv = ["regime", "--logits", str(teacher_path), "--student", str(student_path)]
        assert verify.cli.main([*argv, "--json", "--temperatures", "8"]) == 0
        data = json.loads(capsys.readouterr().out)
        data.pop("student")
        outputs["regime", suffix] = data
    assert outputs["bound", ".npy"] == outputs["bound", ".pt"]
    assert outputs["regime", ".npy"] == outputs["regime", ".pt"]


def test_sizes_at_their_limits(tmp_path, capsys):
    """The most classes derive bound takes works; one more is refused before any work, as is
    the 1 x 10**6 array that used to exhaust memory."""
    rng = numpy.random.default_rng(2)
    at_limit = tmp_path / "limit.npy"
    numpy.save(at_limit, rng.normal(size=(1, MAX_BOUND_CLASSES)))
    argv = ["bound", "--teacher", str(at_limit), "--student", str(at_limit)]
    assert derive.cli.main([*argv, "--temperature", "8", "--order", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["examples"]) == 1
    for shape in ((1, MAX_BOUND_CLASSES + 1), (1, 10**6)):
        over = tmp_path / "over.npy"
        numpy.save(over, numpy.zeros(shape))
        argv = ["bound", "--teacher", str(over), "--student", str(over)]
        assert derive.cli.main([*argv, "--temperature", "8", "--order", "1"]) == 2
        err = capsys.readouterr().err
        assert f"at most {MAX_BOUND_CLASSES} classes" in err and len(err.splitlines()) == 1
        assert verify.cli.main(["regime", "--logits", str(over)]) == 2
        err = capsys.readouterr().err
        assert f"at most {MAX_BOUND_CLASSES} classes" in err and len(err.splitlines()) == 1
