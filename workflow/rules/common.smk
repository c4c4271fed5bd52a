# Configuration validation and input functions shared by every phase.
# Validation happens once, here: the schema fills defaults and refuses unknown
# keys, then ptycho_core builds the frozen StudyConfig (cross-field checks).
# Scripts receive the validated config and rebuild the StudyConfig from it.

from snakemake.utils import validate

from ptycho_core.config import study_from_dict

validate(config, schema="../schemas/config.schema.yaml")
STUDY = study_from_dict(config, source="config")
DOSES = STUDY.dose_labels()  # label ("1e4") -> dose, in ladder order
SEEDS = [str(s) for s in STUDY.seeds]


wildcard_constraints:
    dose="|".join(DOSES),
    seed="|".join(SEEDS),


def dose_value(wildcards):
    """The dose (photons per pattern) of a dose label wildcard."""
    return DOSES[wildcards.dose]


def phase_c_sentinels():
    """Sentinels of every phase C simulation of the study."""
    return expand(
        "results/phase_c/dose_{dose}/seed_{seed}/sentinel.json",
        dose=DOSES,
        seed=SEEDS,
    )
