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
