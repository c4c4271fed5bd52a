# Simulate each replicate's objects and the dose ladder (probe, scan, Poisson counts) and split
# every dataset into train and test regions. Paths: ptycho_core.layout.

REPLICATE = layout.Cell.replicate("{seed}")
GROUND_TRUTH = layout.ground_truth("{seed}")
TRAINING_OBJECT = layout.ground_truth("{seed}", training=True)
SIMULATED = layout.simulated(layout.Cell.pattern(view=False))


rule ground_truth:
    input:
        object_files,
    output:
        **GROUND_TRUTH.as_dict(),
    log:
        layout.log("ground_truth", REPLICATE),
    benchmark:
        layout.benchmark("ground_truth", REPLICATE)
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["ground_truth"],
        physics=PHYSICS_HASH,
        training=False,
        sources=OBJECT_SOURCES,
    script:
        "../scripts/ground_truth.py"


rule training_object:
    input:
        training_object_files,
    output:
        **TRAINING_OBJECT.as_dict(),
    log:
        layout.log("training_object", REPLICATE),
    benchmark:
        layout.benchmark("training_object", REPLICATE)
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["training_object"],
        physics=PHYSICS_HASH,
        training=True,
        sources=TRAINING_OBJECT_SOURCES,
    script:
        "../scripts/ground_truth.py"


rule simulate:
    input:
        probe_files,
        unpack(training_object_inputs),
        obj=GROUND_TRUTH.obj,
        obj_sentinel=GROUND_TRUTH.sentinel,
    output:
        train=SIMULATED.train,
        test=SIMULATED.test,
        preview=report(
            SIMULATED.preview,
            caption="../report/simulation_preview.rst",
            category="Simulation",
            labels={"dose": "{dose}", "seed": "{seed}"},
        ),
        sentinel=SIMULATED.sentinel,
    log:
        layout.log("simulate", layout.Cell.pattern(view=False)),
    benchmark:
        layout.benchmark("simulate", layout.Cell.pattern(view=False))
    conda:
        "../envs/study.yaml"
    threads: 1
    params:
        code=CODE["simulate"],
        probe=PROBE_SOURCES,
    script:
        "../scripts/simulate.py"


rule all_simulate:
    input:
        every_output(rules.ground_truth, seed=SEEDS),
        (
            every_output(rules.training_object, seed=SEEDS)
            if STUDY.object.separate_training
            else []
        ),
        every_output(rules.simulate, dose=DOSES, seed=SEEDS),
