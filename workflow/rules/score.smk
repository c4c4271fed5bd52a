# Every method's reconstruction of a cell is scored against the ground truth
# in the known frame, on one region common to every view of its dose and seed. Paths: ptycho_core.layout.

SCORES = layout.scores(CELL)


rule score:
    input:
        reconstructions_of_cell,
        ground_truth=GROUND_TRUTH.obj,
        ground_truth_sentinel=GROUND_TRUTH.sentinel,
        test=SIMULATED.test,
        simulated_sentinel=SIMULATED.sentinel,
        view=VIEW.view,
        view_sentinel=VIEW.sentinel,
        region_views=region_views_of_cell,
    output:
        metrics=report(
            SCORES.metrics,
            caption="../report/metrics_table.rst",
            category="Scores",
            labels={
                "dose": "{dose}",
                "view": "{view}",
                "seed": "{seed}",
                "table": "metrics",
            },
        ),
        frc=SCORES.frc,
        alignment=SCORES.alignment,
        figure=report(
            SCORES.figure,
            caption="../report/comparison.rst",
            category="Scores",
            labels={
                "dose": "{dose}",
                "view": "{view}",
                "seed": "{seed}",
                "figure": "comparison",
            },
        ),
        sentinel=SCORES.sentinel,
    log:
        layout.log("score", CELL),
    benchmark:
        layout.benchmark("score", CELL)
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["score"],
    script:
        "../scripts/score.py"


rule all_score:
    input:
        every_output(rules.score, dose=DOSES, view=VIEWS, seed=SEEDS),
