# The networks: train PtychoPINN (unsupervised, groups of the view) per cell,
# the supervised Baseline (single patterns: overlap does not exist for it) once
# per dose on every training pattern, and refine a trained PtychoPINN on the
# test counts (PtychoPINN_TTR). Trained and refined bundles live in one tree
# (ptycho_core.layout.bundle).

METHOD_CELL = layout.Cell.pattern(method=True)
BUNDLE = layout.bundle(METHOD_CELL)
DOSE_METHOD_CELL = layout.Cell.pattern(view=False, method=True)
DOSE_BUNDLE = layout.bundle(DOSE_METHOD_CELL)


rule train:
    input:
        unpack(supervised_targets),
        train=SIMULATED.train,
        simulated_sentinel=SIMULATED.sentinel,
        view=VIEW.view,
        view_sentinel=VIEW.sentinel,
    output:
        model=BUNDLE.model,
        sidecar=BUNDLE.sidecar,
        history=BUNDLE.history,
        figure=report(
            BUNDLE.figure,
            caption="../report/loss_curve.rst",
            category="Training",
            labels={
                "method": "{method}",
                "dose": "{dose}",
                "view": "{view}",
                "seed": "{seed}",
            },
        ),
        sentinel=BUNDLE.sentinel,
    log:
        layout.log("train", METHOD_CELL),
    benchmark:
        layout.benchmark("train", METHOD_CELL)
    wildcard_constraints:
        method="|".join(TRAINED_PER_VIEW),
    conda:
        "../envs/nn.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=CODE["train"],
        physics=PHYSICS_HASH,
        views=VIEWS_HASH,
        training=TRAINING_HASH,
    script:
        "../scripts/train.py"


rule train_per_dose:
    input:
        unpack(supervised_targets),
        train=SIMULATED.train,
        simulated_sentinel=SIMULATED.sentinel,
    output:
        model=DOSE_BUNDLE.model,
        sidecar=DOSE_BUNDLE.sidecar,
        history=DOSE_BUNDLE.history,
        figure=report(
            DOSE_BUNDLE.figure,
            caption="../report/loss_curve.rst",
            category="Training",
            labels={
                "method": "{method}",
                "dose": "{dose}",
                "view": "all (once per dose)",
                "seed": "{seed}",
            },
        ),
        sentinel=DOSE_BUNDLE.sentinel,
    log:
        layout.log("train_per_dose", DOSE_METHOD_CELL),
    benchmark:
        layout.benchmark("train_per_dose", DOSE_METHOD_CELL)
    wildcard_constraints:
        method="|".join(TRAINED_PER_DOSE),
    conda:
        "../envs/nn.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=CODE["train_per_dose"],
        physics=PHYSICS_HASH,
        training=TRAINING_HASH,
    script:
        "../scripts/train.py"


rule refine:
    input:
        unpack(refined_from),
        test=SIMULATED.test,
        simulated_sentinel=SIMULATED.sentinel,
        view=VIEW.view,
        view_sentinel=VIEW.sentinel,
    output:
        model=BUNDLE.model,
        sidecar=BUNDLE.sidecar,
        history=BUNDLE.history,
        figure=report(
            BUNDLE.figure,
            caption="../report/refinement_curve.rst",
            category="Test-time refinement",
            labels={
                "method": "{method}",
                "dose": "{dose}",
                "view": "{view}",
                "seed": "{seed}",
            },
        ),
        sentinel=BUNDLE.sentinel,
    log:
        layout.log("refine", METHOD_CELL),
    benchmark:
        layout.benchmark("refine", METHOD_CELL)
    wildcard_constraints:
        method="|".join(REFINED),
    conda:
        "../envs/nn.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=CODE["refine"],
        physics=PHYSICS_HASH,
        views=VIEWS_HASH,
        training=TRAINING_HASH,
        refinement=REFINEMENT_HASH,
        stopping=STOPPING_HASH,
    script:
        "../scripts/refine.py"


rule all_networks:
    input:
        every_output(
            rules.train, method=TRAINED_PER_VIEW, dose=DOSES, view=VIEWS, seed=SEEDS
        ),
        every_output(
            rules.train_per_dose, method=TRAINED_PER_DOSE, dose=DOSES, seed=SEEDS
        ),
        every_output(rules.refine, method=REFINED, dose=DOSES, view=VIEWS, seed=SEEDS),
