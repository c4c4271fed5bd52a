"""Phase G adapter: aggregate the study into tables, highlights and figures (see ptycho_core.steps.report)."""

from pathlib import Path

from ptycho_core.steps.joblog import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

from ptycho_core.config import study_from_dict  # noqa: E402
from ptycho_core.steps.report import run_report  # noqa: E402

sm = snakemake  # noqa: F821
study = study_from_dict(sm.config, source="config")
run_report(
    study,
    cells=sm.params.cells,
    frc_tables=[(c["dose"], c["view"], c["seed"], c["frc"]) for c in sm.params.cells],
    overlap_paths={(c["view"], c["dose"], c["seed"]): c["overlap"] for c in sm.params.cells},
    benchmarks=sm.params.benchmarks,
    ground_truth=sm.input.ground_truth,
    recon_path_of=lambda dose_label, view, method: f"results/phase_f/dose_{dose_label}/view_{view}/seed_{study.seeds[0]}/{method}/recon.npz",
    alignment_path_of=lambda dose_label, view: f"results/phase_f/dose_{dose_label}/view_{view}/seed_{study.seeds[0]}/alignment.json",
    input_sentinels=list(sm.input.sentinels),
    out={
        "metrics": sm.output.metrics,
        "summary": sm.output.summary,
        "highlights": sm.output.highlights,
        "deltas": sm.output.deltas,
        "headline": sm.output.headline,
        "landing": sm.output.landing,
        "dose_response_dir": Path(sm.output.dose_response[0]).parent,
        "frc_figure": sm.output.frc,
        "montage_dir": Path(sm.output.montages[0]).parent,
        "overlap": sm.output.overlap,
        "runtime": sm.output.runtime,
        "sentinel": sm.output.sentinel,
    },
)
