# Phase D: overlap views (subsets of the base scan) with persisted groups and
# measured overlap metrics.


rule views:
    input:
        train="results/phase_c/dose_{dose}/seed_{seed}/train.npz",
        test="results/phase_c/dose_{dose}/seed_{seed}/test.npz",
        phase_c="results/phase_c/dose_{dose}/seed_{seed}/sentinel.json",
    output:
        view="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/view.npz",
        metrics="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/overlap_metrics.json",
        figure=report(
            "results/phase_d/dose_{dose}/view_{view}/seed_{seed}/positions.png",
            caption="../report/view_positions.rst",
            category="Phase D (overlap views)",
            labels={"dose": "{dose}", "view": "{view}", "seed": "{seed}"},
        ),
        sentinel="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/sentinel.json",
    log:
        "logs/phase_d/dose_{dose}/view_{view}/seed_{seed}/views.log",
    benchmark:
        "benchmarks/phase_d/dose_{dose}/view_{view}/seed_{seed}/views.tsv"
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["views"],
        dose=dose_value,
        physics=PHYSICS_HASH,
        views=VIEWS_HASH,
    script:
        "../scripts/views.py"


rule phase_d:
    input:
        every_output(rules.views, dose=DOSES, view=VIEWS, seed=SEEDS),
