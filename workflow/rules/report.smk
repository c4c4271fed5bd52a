# The study report: one tidy table of every cell's scores feeds the summary,
# the deltas, the highlights, the figures and the Snakemake HTML report.
# Paths: ptycho_core.layout.

REPORT = layout.report(VIEWS)


rule report:
    input:
        scores=[p for c in CELLS for p in layout.scores(c)],
        overlap=[layout.view(c).overlap for c in CELLS],
        view_sentinels=[layout.view(c).sentinel for c in CELLS],
        recons=[p for c in CELLS for f in layout.reconstructions(c).values() for p in f],
        # the montages show the first replicate
        ground_truth=layout.ground_truth(SEEDS[0]).obj,
        ground_truth_sentinel=layout.ground_truth(SEEDS[0]).sentinel,
    output:
        metrics=report(
            REPORT.metrics,
            caption="../report/study_table.rst",
            category="Study",
        ),
        summary=REPORT.summary,
        highlights=report(
            REPORT.highlights,
            caption="../report/highlights.rst",
            category="Study",
        ),
        headline=report(
            REPORT.headline,
            caption="../report/headline.rst",
            category="Study",
        ),
        deltas=REPORT.deltas,
        # included by the report's landing page (report/workflow.rst)
        landing=REPORT.landing,
        dose_response=report(
            list(REPORT.dose_response),
            caption="../report/dose_response.rst",
            category="Study",
        ),
        frc=report(
            REPORT.frc,
            caption="../report/frc.rst",
            category="Study",
        ),
        montages=report(
            list(REPORT.montages),
            caption="../report/montage.rst",
            category="Study",
        ),
        overlap=report(
            REPORT.overlap,
            caption="../report/overlap.rst",
            category="Study",
        ),
        runtime=report(
            REPORT.runtime,
            caption="../report/runtime.rst",
            category="Study",
        ),
        sentinel=REPORT.sentinel,
    log:
        layout.log("report"),
    benchmark:
        layout.benchmark("report")
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["report"],
    script:
        "../scripts/report.py"


rule inventory:
    input:
        REPORT.sentinel,
    output:
        report(
            REPORT.inventory,
            caption="../report/inventory.rst",
            category="Study",
        ),
    log:
        layout.log("inventory"),
    benchmark:
        layout.benchmark("inventory")
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["inventory"],
    script:
        "../scripts/inventory.py"


rule all_report:
    input:
        REPORT.sentinel,
        REPORT.inventory,
