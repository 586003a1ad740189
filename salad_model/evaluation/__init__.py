"""Evaluation: Bandai-Namco metrics and reports, the motion classifier, figures, the HumanML3D/KIT T2M benchmark."""
