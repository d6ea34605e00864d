"""What both llama.cpp engines share: llama-cpp-python's (bot.llm.local) and the prebuilt
library's (bot.llm.cffi_runtime). Its own module, so that neither imports the other's."""
import logging


class Aborted(Exception):
    """A call into llama.cpp stopped by the engine's abort() (the model is being closed)."""


# ggml's log levels (ggml.h): llama-cpp-python's own callback still maps the older numbering, so
# llama.cpp's warnings pass as errors and are printed to Python's stderr; under a rich spinner that
# stream wraps them at the terminal's width, and a wrapped tail ("will be overridden") showed.
GGML_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
llama_log = logging.getLogger("llama.cpp")
llama_log.addHandler(logging.NullHandler())  # shown only where the app configures logging


class LogForwarder:
    """llama.cpp's log lines to the `llama.cpp` logger at their ggml level, for either engine's
    log callback: `wanted(level)` first (a continuation, level 5, keeps the level of the line it
    goes on from), then the text, only read where the logger shows it."""

    def __init__(self):
        self.level = logging.INFO

    def wanted(self, ggml_level: int) -> bool:
        if ggml_level != 5:
            self.level = GGML_LEVELS.get(ggml_level, logging.INFO)
        return llama_log.isEnabledFor(self.level)

    def __call__(self, text: bytes) -> None:
        llama_log.log(self.level, text.decode("utf-8", errors="replace").rstrip("\n"))
