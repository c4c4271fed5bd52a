# Phase C: simulate the dose ladder (object, probe, scan, Poisson counts) and
# split every dataset into train and test regions.


rule ground_truth:
    input:
        object_files,
    output:
        obj="results/phase_c/ground_truth.npz",
        sentinel="results/phase_c/ground_truth.sentinel.json",
    log:
        "logs/phase_c/ground_truth.log",
    benchmark:
        "benchmarks/phase_c/ground_truth.tsv"
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["ground_truth"],
        physics=PHYSICS_HASH,
        training=False,
    script:
        "../scripts/ground_truth.py"


rule training_object:
    input:
        training_object_files,
    output:
        obj="results/phase_c/training_object.npz",
        sentinel="results/phase_c/training_object.sentinel.json",
    log:
        "logs/phase_c/training_object.log",
    benchmark:
        "benchmarks/phase_c/training_object.tsv"
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["training_object"],
        physics=PHYSICS_HASH,
        training=True,
    script:
        "../scripts/ground_truth.py"


rule simulate:
    input:
        probe_files,
        unpack(training_object_inputs),
        obj=rules.ground_truth.output.obj,
        obj_sentinel=rules.ground_truth.output.sentinel,
    output:
        train="results/phase_c/dose_{dose}/seed_{seed}/train.npz",
        test="results/phase_c/dose_{dose}/seed_{seed}/test.npz",
        preview=report(
            "results/phase_c/dose_{dose}/seed_{seed}/preview.png",
            caption="../report/simulation_preview.rst",
            category="Phase C (simulation)",
            labels={"dose": "{dose}", "seed": "{seed}"},
        ),
        sentinel="results/phase_c/dose_{dose}/seed_{seed}/sentinel.json",
    log:
        "logs/phase_c/dose_{dose}/seed_{seed}/simulate.log",
    benchmark:
        "benchmarks/phase_c/dose_{dose}/seed_{seed}/simulate.tsv"
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["simulate"],
        dose=dose_value,
    script:
        "../scripts/simulate.py"


rule phase_c:
    input:
        every_output(rules.ground_truth),
        every_output(rules.training_object) if STUDY.object.separate_training else [],
        every_output(rules.simulate, dose=DOSES, seed=SEEDS),
