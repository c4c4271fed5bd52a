# Phase F: every method reconstructs the same test positions of the view;
# reconstructions are aligned by one policy and scored against the ground truth.


rule study_config:
    output:
        "results/study_config.json",
    log:
        "logs/study_config.log",
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["study_config"],
        # the sections the PtyChi jobs read: a change elsewhere (training,
        # refinement) reruns neither this JSON nor the PtyChi jobs
        physics=PHYSICS_HASH,
        views=VIEWS_HASH,
        ptychi=PTYCHI_HASH,
    script:
        "../scripts/study_config.py"


rule refine:
    input:
        unpack(refined_from),
        test="results/phase_c/dose_{dose}/seed_{seed}/test.npz",
        phase_c="results/phase_c/dose_{dose}/seed_{seed}/sentinel.json",
        view="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/view.npz",
        phase_d="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/sentinel.json",
    output:
        model="results/phase_f/dose_{dose}/view_{view}/seed_{seed}/{refined}/bundle/model.keras",
        sidecar="results/phase_f/dose_{dose}/view_{view}/seed_{seed}/{refined}/bundle/bundle.json",
        history="results/phase_f/dose_{dose}/view_{view}/seed_{seed}/{refined}/bundle/history.csv",
        figure=report(
            "results/phase_f/dose_{dose}/view_{view}/seed_{seed}/{refined}/bundle/deviance.png",
            caption="../report/refinement_curve.rst",
            category="Phase F (test-time refinement)",
            labels={
                "method": "{refined}",
                "dose": "{dose}",
                "view": "{view}",
                "seed": "{seed}",
            },
        ),
        sentinel="results/phase_f/dose_{dose}/view_{view}/seed_{seed}/{refined}/bundle/sentinel.json",
    log:
        "logs/phase_f/dose_{dose}/view_{view}/seed_{seed}/{refined}/refine.log",
    benchmark:
        "benchmarks/phase_f/dose_{dose}/view_{view}/seed_{seed}/{refined}/refine.tsv"
    wildcard_constraints:
        refined="|".join(REFINED),
    conda:
        "../envs/nn.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        code=CODE["refine"],
        dose=dose_value,
        physics=PHYSICS_HASH,
        views=VIEWS_HASH,
        training=TRAINING_HASH,
        refinement=REFINEMENT_HASH,
    script:
        "../scripts/refine.py"


rule reconstruct_network:
    input:
        unpack(network_bundle),
        test="results/phase_c/dose_{dose}/seed_{seed}/test.npz",
        phase_c="results/phase_c/dose_{dose}/seed_{seed}/sentinel.json",
        view="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/view.npz",
        phase_d="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/sentinel.json",
    output:
        recon="results/phase_f/dose_{dose}/view_{view}/seed_{seed}/{method}/recon.npz",
        sentinel="results/phase_f/dose_{dose}/view_{view}/seed_{seed}/{method}/sentinel.json",
    log:
        "logs/phase_f/dose_{dose}/view_{view}/seed_{seed}/{method}/reconstruct.log",
    benchmark:
        "benchmarks/phase_f/dose_{dose}/view_{view}/seed_{seed}/{method}/reconstruct.tsv"
    wildcard_constraints:
        method="|".join(NETWORK),
    conda:
        "../envs/nn.yaml"
    threads: 1
    params:
        code=CODE["reconstruct_network"],
        dose=dose_value,
    script:
        "../scripts/reconstruct_network.py"


rule reconstruct_ptychi:
    input:
        config=rules.study_config.output[0],
        test="results/phase_c/dose_{dose}/seed_{seed}/test.npz",
        phase_c="results/phase_c/dose_{dose}/seed_{seed}/sentinel.json",
        view="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/view.npz",
        phase_d="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/sentinel.json",
    output:
        recon="results/phase_f/dose_{dose}/view_{view}/seed_{seed}/PtyChi/recon.npz",
        sentinel="results/phase_f/dose_{dose}/view_{view}/seed_{seed}/PtyChi/sentinel.json",
    log:
        "logs/phase_f/dose_{dose}/view_{view}/seed_{seed}/PtyChi/reconstruct.log",
    benchmark:
        "benchmarks/phase_f/dose_{dose}/view_{view}/seed_{seed}/PtyChi/reconstruct.tsv"
    conda:
        "../envs/ptychi.yaml"
    threads: 1
    params:
        code=CODE["reconstruct_ptychi"],
        dose=dose_value,
        ptychi=PTYCHI_HASH,
    script:
        # runs the step here when this interpreter has pty-chi (--sdm conda),
        # otherwise in .venv-ptychi or $PTYCHI_PYTHON (see the script)
        "../scripts/reconstruct_ptychi.py"


rule score:
    input:
        ground_truth=rules.ground_truth.output.obj,
        test="results/phase_c/dose_{dose}/seed_{seed}/test.npz",
        view="results/phase_d/dose_{dose}/view_{view}/seed_{seed}/view.npz",
        recons=expand(
            "results/phase_f/dose_{{dose}}/view_{{view}}/seed_{{seed}}/{method}/recon.npz",
            method=ALL_METHODS,
        ),
        sentinels=expand(
            "results/phase_f/dose_{{dose}}/view_{{view}}/seed_{{seed}}/{method}/sentinel.json",
            method=ALL_METHODS,
        ),
    output:
        metrics=report(
            "results/phase_f/dose_{dose}/view_{view}/seed_{seed}/metrics.csv",
            caption="../report/metrics_table.rst",
            category="Phase F (comparison)",
            labels={
                "dose": "{dose}",
                "view": "{view}",
                "seed": "{seed}",
                "table": "metrics",
            },
        ),
        frc="results/phase_f/dose_{dose}/view_{view}/seed_{seed}/frc.csv",
        alignment="results/phase_f/dose_{dose}/view_{view}/seed_{seed}/alignment.json",
        figure=report(
            "results/phase_f/dose_{dose}/view_{view}/seed_{seed}/comparison.png",
            caption="../report/comparison.rst",
            category="Phase F (comparison)",
            labels={
                "dose": "{dose}",
                "view": "{view}",
                "seed": "{seed}",
                "figure": "comparison",
            },
        ),
        sentinel="results/phase_f/dose_{dose}/view_{view}/seed_{seed}/sentinel.json",
    log:
        "logs/phase_f/dose_{dose}/view_{view}/seed_{seed}/score.log",
    benchmark:
        "benchmarks/phase_f/dose_{dose}/view_{view}/seed_{seed}/score.tsv"
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["score"],
        dose=dose_value,
        methods=ALL_METHODS,
    script:
        "../scripts/score.py"


rule phase_f:
    input:
        every_output(rules.refine, refined=REFINED, dose=DOSES, view=VIEWS, seed=SEEDS),
        every_output(
            rules.reconstruct_network,
            method=NETWORK,
            dose=DOSES,
            view=VIEWS,
            seed=SEEDS,
        ),
        every_output(rules.reconstruct_ptychi, dose=DOSES, view=VIEWS, seed=SEEDS),
        every_output(rules.score, dose=DOSES, view=VIEWS, seed=SEEDS),
