"""The evaluation gate: held-out loss against the active version and the base model, plus the
persona's behaviour probes (`personas/<name>/probes.toml`). See `gate.py` and `probes.py`."""
from trainer.evaluate.gate import GateReport, decide, evaluate_version, gate_passed
from trainer.evaluate.probes import Probe, ProbeFileError, ProbeResult, ProbeSuite, load_probes, run_probe, run_probes

__all__ = ["GateReport", "decide", "evaluate_version", "gate_passed", "Probe", "ProbeFileError", "ProbeResult",
           "ProbeSuite", "load_probes", "run_probe", "run_probes"]
