# Phase E: train PtychoPINN (unsupervised, groups of the view) and the
# supervised Baseline (single patterns of the view) per dose, view and seed.


rule train:
    input:
        unpack(supervised_targets),
        train="results/phase_c/dose_{dose}/seed_{seed}/train.npz",
        phase_c="results/phase_c/dose_{dose}/seed_{seed}/sentinel.json",
        view="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/view.npz",
        phase_d="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/sentinel.json",
    output:
        model="results/phase_e/{method}/dose_{dose}/view_{view}/seed_{seed}/model.keras",
        sidecar="results/phase_e/{method}/dose_{dose}/view_{view}/seed_{seed}/bundle.json",
        history="results/phase_e/{method}/dose_{dose}/view_{view}/seed_{seed}/history.csv",
        figure=report(
            "results/phase_e/{method}/dose_{dose}/view_{view}/seed_{seed}/loss.png",
            caption="../report/loss_curve.rst",
            category="Phase E (training)",
            labels={
                "method": "{method}",
                "dose": "{dose}",
                "view": "{view}",
                "seed": "{seed}",
            },
        ),
        sentinel="results/phase_e/{method}/dose_{dose}/view_{view}/seed_{seed}/sentinel.json",
    log:
        "logs/phase_e/{method}/dose_{dose}/view_{view}/seed_{seed}/train.log",
    benchmark:
        "benchmarks/phase_e/{method}/dose_{dose}/view_{view}/seed_{seed}/train.tsv"
    wildcard_constraints:
        method="|".join(TRAINED),
    conda:
        "../envs/nn.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=CODE["train"],
        dose=dose_value,
        physics=PHYSICS_HASH,
        views=VIEWS_HASH,
        training=TRAINING_HASH,
    script:
        "../scripts/train.py"


rule phase_e:
    input:
        every_output(rules.train, method=TRAINED, dose=DOSES, view=VIEWS, seed=SEEDS),
