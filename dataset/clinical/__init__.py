"""Clinical truth for AMD on OCT: one data file (`amd_oct.yaml`) and the rules derived from it.

Everything that needs a biomarker name, a stage, a referral outcome or a guideline sentence reads
it from here: the phantom, the rules curriculum backend, the prompts and the evaluation. How text
negates a finding (`negation.yaml`) lives here too, for the three readers of free text: curriculum
validation, the answer parser and saliency.
"""

from dataset.clinical.knowledge import (
    BIOMARKERS,
    EVALUATION_BIOMARKERS,
    REFERRALS,
    STAGES,
    TREATMENT_REFERRALS,
    ClinicalKnowledge,
    load_knowledge,
)
from dataset.clinical.negation import NegationCues, load_negation_cues
from dataset.clinical.rules import (
    is_present,
    present_biomarkers,
    referral_from_findings,
    stage_from_findings,
    stage_group,
    treatment_referral_from_findings,
    triage_to_treatment,
)

__all__ = [
    "BIOMARKERS",
    "EVALUATION_BIOMARKERS",
    "REFERRALS",
    "STAGES",
    "TREATMENT_REFERRALS",
    "ClinicalKnowledge",
    "NegationCues",
    "is_present",
    "load_knowledge",
    "load_negation_cues",
    "present_biomarkers",
    "referral_from_findings",
    "stage_from_findings",
    "stage_group",
    "treatment_referral_from_findings",
    "triage_to_treatment",
]
