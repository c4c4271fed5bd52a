# Configuration validation and input functions shared by every step.
# Validation happens once, here, before Snakemake's own checks: the study files
# are read again strictly (a key named twice is refused), merged, validated
# against the schema with its defaults filled and the cross-field checks
# (ptycho_core.config.study_from_dict), and every view and its groups are built.
# A refusal stops the workflow with one message naming the study file that set
# the key at fault (or "default": a key no file sets), before any job.
# Scripts receive the validated config and rebuild the StudyConfig from it.

import copy
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config

from ptycho_core import layout
from ptycho_core.code_hash import code_hashes
from ptycho_core.config import SECTION_GROUPS, study_from_dict
from ptycho_core.io.npz import DataContractError
from ptycho_core.study_files import (
    ConfigError,
    merge_studies,
    read_study_file,
    source_of,
)
from ptycho_core.io.sentinel import sha256_file
from ptycho_core.physics.simulate import check_scan_size
from ptycho_core.physics.objects import make_object
from ptycho_core.physics.probe import make_probe, measure_fwhm_diameter
from ptycho_core.methods import (
    REFINED_METHODS,
    TRAINED_METHODS,
    Method,
)
from ptycho_core.sampling.views import InfeasibleViewError, check_views_feasible


def study_file_label(path):
    """A study file as its messages name it: relative to the working directory when inside it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


# Snakemake has merged config/config.yaml (the Snakefile's configfile) and the
# --configfile files with its own loader, which keeps the last of two equal
# keys; so the study is rebuilt here from the files themselves, read strictly
# and merged by ptycho_core.config.merge_studies: each --configfile file is
# deep-merged over config/config.yaml (then --config values over both), except
# that a study file replaces whole the `views` it sets (REPLACED_SECTIONS: a
# study of one view has one view) and the `object` (`probe`) section when it
# changes `object.family` (`probe.kind`) (REPLACED_WHEN_CHANGED: a file that
# changes the object's family describes the whole object; the keys it leaves
# out take the schema's defaults, so a file object gets no train_seed of the
# default's lines object).
# Lists (doses, seeds) replace the lower file's, as every non-mapping value.
# Snakemake's validate() is not called: study_from_dict validates against the
# same schema with the same draft and fills the same defaults, and `config`
# becomes the validated study (STUDY.to_dict(): every key, defaults filled).
def read_study():
    given = {os.path.abspath(f) for f in workflow.overwrite_configfiles}
    files = [f for f in workflow.configfiles if os.path.abspath(f) not in given]
    if workflow.config_settings.replace_workflow_config:
        files = []
    files += list(workflow.overwrite_configfiles)
    labels = [study_file_label(f) for f in files]
    layers = [(label, read_study_file(f, label)) for f, label in zip(files, labels)]
    if workflow.config_settings.config:
        layers.append(("--config", dict(workflow.config_settings.config)))
    plain = {}
    for _, raw in layers:
        update_config(plain, copy.deepcopy(raw))
    if plain != dict(config):
        # Not these files' configuration: a deploying workflow passed its own (module
        # `config:`). Validate that one; errors name it "config".
        layers = [("config", copy.deepcopy(dict(config)))]
    raw, sources = merge_studies(layers)
    everything = " + ".join(label for label, _ in layers) or "config"
    study = study_from_dict(raw, source=everything, sources=sources)
    # The scan's size against the memory bound, before any scan is made (the probe's
    # diameter sets the step; a probe.file is read and checked here).
    diameter = measure_fwhm_diameter(make_probe(study.N, study.probe))
    check_scan_size(study, diameter, source=source_of(sources, "scan.step_fraction"))
    check_views_feasible(study)
    # A family-file object (and training object) is read and checked before any job too.
    if study.object.family == "file":
        make_object(study.object)
        if study.object.separate_training:
            make_object(study.object, training=True)
    return study


try:
    STUDY = read_study()
except (ConfigError, InfeasibleViewError, DataContractError) as exc:
    raise WorkflowError(str(exc)) from None
config.clear()
config.update(STUDY.to_dict())
# {config key: sha256} of the files the object, the training object and the probe are read from (read and
# checked above): rule params, so a file replaced by other content reruns the rules that read it, whatever its
# modification time (an input alone is compared by time).
OBJECT_SOURCES = {k: sha256_file(p) for k, p in STUDY.object.source_files().items()}
TRAINING_OBJECT_SOURCES = {
    k: sha256_file(p) for k, p in STUDY.object.source_files(training=True).items()
}
PROBE_SOURCES = {k: sha256_file(p) for k, p in STUDY.probe.source_files().items()}
DOSES = STUDY.dose_labels()  # label ("1e4") -> dose, in ladder order
SEEDS = [str(s) for s in STUDY.seeds]
VIEWS = [v.name for v in STUDY.views]
# What each step depends on: a change reruns exactly the jobs concerned.
# (ptycho_core.config.SECTION_GROUPS; each step's sentinel records the same hashes.)
SECTION_HASHES = STUDY.section_hashes(*SECTION_GROUPS)
PHYSICS_HASH = SECTION_HASHES["physics"]
VIEWS_HASH = SECTION_HASHES["views"]
TRAINING_HASH = SECTION_HASHES["training"]
PTYCHI_HASH = SECTION_HASHES["ptychi"]
REFINEMENT_HASH = SECTION_HASHES["refinement"]
STOPPING_HASH = SECTION_HASHES["stopping"]
TRAINED_PER_VIEW = [m.value for m in TRAINED_METHODS if m.spec.per_view]
TRAINED_PER_DOSE = [m.value for m in TRAINED_METHODS if not m.spec.per_view]
REFINED = [m.value for m in REFINED_METHODS]
# reconstruction rule -> the methods it reconstructs (methods.MethodSpec.reconstruct_step)
RECONSTRUCTED_BY = {
    step: [m.value for m in Method if m.spec.reconstruct_step == step]
    for step in dict.fromkeys(m.spec.reconstruct_step for m in Method)
}
# The library code each rule's job can load (ptycho_core.code_hash), a param
# of every rule: editing a ptycho_core module or a rule's script reruns the jobs
# that can load it, and nothing else (by content: the profiles turn off
# Snakemake's mtime-based code trigger, so a fresh clone reruns nothing).
# Each rule's adapter script (workflow/scripts/) imports its step module in
# ptycho_core.steps and at most ADAPTER_IMPORTS.
ADAPTER_IMPORTS = (
    "ptycho_core.config",
    "ptycho_core.layout",
    "ptycho_core.steps.joblog",
)
# rule -> (its step module in ptycho_core.steps, its adapter script in workflow/scripts/)
STEP_OF_RULE = {
    "ground_truth": ("simulate", "ground_truth"),
    "training_object": ("simulate", "ground_truth"),
    "simulate": ("simulate", "simulate"),
    "views": ("views", "views"),
    "train": ("train", "train"),
    "train_per_dose": ("train", "train"),
    "refine": ("refine", "refine"),
    "reconstruct_network": ("reconstruct_network", "reconstruct_network"),
    "reconstruct_ptychi": ("reconstruct_ptychi", "reconstruct_ptychi"),
    "score": ("score", "score"),
    "report": ("report", "report"),
    "inventory": ("report", "inventory"),
    "study_config": ("study_config", "study_config"),
}
# the scripts as this file's workflow sees them (a module's own, or its cached remote copy)
SCRIPT_FILES = {
    f: str(workflow.source_path(f"../scripts/{f}.py")) for _, f in STEP_OF_RULE.values()
}
STEP_MODULES = {
    name: {
        "modules": (f"ptycho_core.steps.{s}", *ADAPTER_IMPORTS),
        "files": (SCRIPT_FILES[f],),
    }
    for name, (s, f) in STEP_OF_RULE.items()
}
CODE = code_hashes(STEP_MODULES)


wildcard_constraints:
    dose="|".join(DOSES),
    seed="|".join(SEEDS),
    view="|".join(VIEWS),


def object_files(wildcards):
    """The files the study object is read from (family file), so that a changed file reruns it."""
    return list(STUDY.object.source_files().values())


def training_object_files(wildcards):
    """The files the separate training object is read from (object.train_file, or its images)."""
    return list(STUDY.object.source_files(training=True).values())


def probe_files(wildcards):
    """The file the probe is read from (probe.kind file): an input of every job that builds the probe."""
    return list(STUDY.probe.source_files().values())


def cell_of(wildcards):
    """The cell of a job's wildcards (ptycho_core.layout.Cell)."""
    return layout.Cell.from_wildcards(wildcards)


def training_object_inputs(wildcards):
    """The separate training object, when the configuration has one (object.train_seed or object.train_file)."""
    if not STUDY.object.separate_training:
        return {}
    files = layout.ground_truth(wildcards.seed, training=True)
    return {"train_obj": files.obj, "train_obj_sentinel": files.sentinel}


def supervised_targets(wildcards):
    """For a supervised method only, the object its training split was simulated
    on (its targets) and its sentinel: the DAG shows that no unsupervised method reads a ground truth.
    """
    if not Method(wildcards.method).spec.supervised:
        return {}
    files = layout.ground_truth(wildcards.seed, training=STUDY.object.separate_training)
    return {"ground_truth": files.obj, "ground_truth_sentinel": files.sentinel}


def network_bundles_of_cell(wildcards):
    """The bundles every network method of the cell reconstructs with, trained or refined (model, sidecar,
    sentinel)."""
    return [
        p
        for f in layout.network_bundles(cell_of(wildcards)).values()
        for p in (f.model, f.sidecar, f.sentinel)
    ]


def refined_from(wildcards):
    """The trained bundle that a refined method fine-tunes."""
    files = layout.refined_from(cell_of(wildcards))
    return {
        "model": files.model,
        "sidecar": files.sidecar,
        "bundle_sentinel": files.sentinel,
    }


def reconstructions_of_cell(wildcards):
    """Every method's reconstruction of the cell and its sentinel."""
    return [p for f in layout.reconstructions(cell_of(wildcards)).values() for p in f]


def region_views_of_cell(wildcards):
    """Every view of the cell's dose and seed (index and sentinel): the evaluation region is common to them."""
    return [
        p
        for f in layout.region_views(STUDY, cell_of(wildcards)).values()
        for p in (f.view, f.sentinel)
    ]


def every_output(rule, **wildcards):
    """Every output file of every job of ``rule`` over the given wildcard values.

    The step targets request these, not only the sentinels downstream rules
    read, so that a plain run regenerates any artifact of the step that is
    missing (a deleted reconstruction, a bundle file)."""
    return expand([str(f) for f in rule.output], **wildcards)


# Every cell of the study (dose, view, seed), in ladder order.
CELLS = layout.cells(STUDY)
