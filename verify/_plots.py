"""Writing a matplotlib figure as a PNG file: rendered in memory, closed, written atomically
(never half-written), a bad path one :class:`~verify.VerifyError` line. Used by the figures,
``verify regime --plot`` and ``verify monitor-report --plot``."""

import io

from derive import DeriveError
from derive._files import write_atomically

from ._errors import VerifyError

__all__ = ["png_bytes", "save_png"]


def png_bytes(figure, *, dpi):
    """The figure as PNG bytes; the figure is closed."""
    # lazy: matplotlib is needed only for plots, and importing verify must not import it
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()


def save_png(figure, path, *, dpi, option="--plot"):
    """Write the figure to ``path`` (``option`` names it in the error); return the path."""
    data = png_bytes(figure, dpi=dpi)
    try:
        return write_atomically(path, data, option=option)
    except DeriveError as error:
        raise VerifyError(str(error)) from None
