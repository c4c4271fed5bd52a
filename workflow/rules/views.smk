# Overlap views (subsets of the base scan) with persisted groups and measured
# overlap metrics. Paths: ptycho_core.layout.

CELL = layout.Cell.pattern()
VIEW = layout.view(CELL)


rule views:
    input:
        train=SIMULATED.train,
        test=SIMULATED.test,
        simulated_sentinel=SIMULATED.sentinel,
    output:
        view=VIEW.view,
        overlap=VIEW.overlap,
        figure=report(
            VIEW.figure,
            caption="../report/view_positions.rst",
            category="Overlap views",
            labels={"dose": "{dose}", "view": "{view}", "seed": "{seed}"},
        ),
        sentinel=VIEW.sentinel,
    log:
        layout.log("views", CELL),
    benchmark:
        layout.benchmark("views", CELL)
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["views"],
        physics=PHYSICS_HASH,
        views=VIEWS_HASH,
    script:
        "../scripts/views.py"


rule all_views:
    input:
        every_output(rules.views, dose=DOSES, view=VIEWS, seed=SEEDS),
