# Phase G: one tidy table of every phase F result feeds the summary, the
# deltas, the highlights, the figures and the Snakemake HTML report.

G = "results/phase_g"
DOSE_RESPONSE_FIGS = [
    f"{G}/figures/dose_response/{q}_{m}.png" for q, m in DOSE_RESPONSE
]


rule report:
    input:
        metrics=[c["path"] for c in REPORT_CELLS],
        frc=[c["frc"] for c in REPORT_CELLS],
        alignments=[c["alignment"] for c in REPORT_CELLS],
        overlap=[c["overlap"] for c in REPORT_CELLS],
        recons=expand(
            "results/phase_f/dose_{dose}/view_{view}/seed_{seed}/{method}/recon.npz",
            dose=DOSES,
            view=VIEWS,
            seed=SEEDS,
            method=ALL_METHODS,
        ),
        sentinels=phase_f_sentinels(),
        ground_truth=rules.ground_truth.output.obj,
    output:
        metrics=report(
            f"{G}/metrics.csv",
            caption="../report/study_table.rst",
            category="Phase G (study)",
        ),
        summary=f"{G}/summary.json",
        highlights=report(
            f"{G}/highlights.txt",
            caption="../report/highlights.rst",
            category="Phase G (study)",
        ),
        headline=report(
            f"{G}/headline.csv",
            caption="../report/headline.rst",
            category="Phase G (study)",
        ),
        deltas=f"{G}/deltas.txt",
        # included by the report's landing page (report/workflow.rst)
        landing=f"{G}/landing.rst",
        dose_response=report(
            DOSE_RESPONSE_FIGS,
            caption="../report/dose_response.rst",
            category="Phase G (study)",
        ),
        frc=report(
            f"{G}/figures/frc.png",
            caption="../report/frc.rst",
            category="Phase G (study)",
        ),
        montages=report(
            expand(f"{G}/figures/montage_{{view}}.png", view=VIEWS),
            caption="../report/montage.rst",
            category="Phase G (study)",
        ),
        overlap=report(
            f"{G}/overlap.csv",
            caption="../report/overlap.rst",
            category="Phase G (study)",
        ),
        runtime=report(
            f"{G}/runtime.csv",
            caption="../report/runtime.rst",
            category="Phase G (study)",
        ),
        sentinel=f"{G}/sentinel.json",
    log:
        "logs/phase_g/report.log",
    benchmark:
        "benchmarks/phase_g/report.tsv"
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["report"],
        cells=REPORT_CELLS,
        benchmarks=lambda w: benchmark_files(),
    script:
        "../scripts/report.py"


rule inventory:
    input:
        rules.report.output.sentinel,
    output:
        report(
            f"{G}/inventory.csv",
            caption="../report/inventory.rst",
            category="Phase G (study)",
        ),
    log:
        "logs/phase_g/inventory.log",
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["inventory"],
    script:
        "../scripts/inventory.py"


rule phase_g:
    input:
        rules.report.output.sentinel,
        rules.inventory.output,
