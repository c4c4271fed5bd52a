# Every method reconstructs the same test positions of the view onto the
# ground-truth frame: the networks by inference and stitching, PtyChi by
# iterative reconstruction in its own environment. Paths: ptycho_core.layout.

RECON = layout.reconstruction(METHOD_CELL)


rule study_config:
    output:
        layout.STUDY_CONFIG,
    log:
        layout.log("study_config"),
    benchmark:
        layout.benchmark("study_config")
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
        stopping=STOPPING_HASH,
    script:
        "../scripts/study_config.py"


rule reconstruct_network:
    input:
        network_bundles_of_cell,
        test=SIMULATED.test,
        simulated_sentinel=SIMULATED.sentinel,
        view=VIEW.view,
        view_sentinel=VIEW.sentinel,
    output:
        # every network method of the cell in one job (one interpreter and TensorFlow start-up)
        [p for f in layout.network_reconstructions(CELL).values() for p in f],
    log:
        layout.log("reconstruct_network", CELL),
    benchmark:
        layout.benchmark("reconstruct_network", CELL)
    conda:
        "../envs/nn.yaml"
    threads: 1
    params:
        code=CODE["reconstruct_network"],
    script:
        "../scripts/reconstruct_network.py"


rule reconstruct_ptychi:
    input:
        config=layout.STUDY_CONFIG,
        test=SIMULATED.test,
        simulated_sentinel=SIMULATED.sentinel,
        view=VIEW.view,
        view_sentinel=VIEW.sentinel,
    output:
        **RECON.as_dict(),
    log:
        layout.log("reconstruct_ptychi", METHOD_CELL),
    benchmark:
        layout.benchmark("reconstruct_ptychi", METHOD_CELL)
    wildcard_constraints:
        method="|".join(RECONSTRUCTED_BY["reconstruct_ptychi"]),
    conda:
        "../envs/ptychi.yaml"
    threads: 1
    params:
        code=CODE["reconstruct_ptychi"],
        ptychi=PTYCHI_HASH,
        stopping=STOPPING_HASH,
    script:
        # runs the step here when this interpreter has pty-chi (--sdm conda),
        # otherwise in .venv-ptychi or $PTYCHI_PYTHON (see the script)
        "../scripts/reconstruct_ptychi.py"


rule all_reconstruct:
    input:
        every_output(rules.reconstruct_network, dose=DOSES, view=VIEWS, seed=SEEDS),
        every_output(
            rules.reconstruct_ptychi,
            method=RECONSTRUCTED_BY["reconstruct_ptychi"],
            dose=DOSES,
            view=VIEWS,
            seed=SEEDS,
        ),
