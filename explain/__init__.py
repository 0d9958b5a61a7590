"""Model understanding: SHAP explanations (CPU and GPU) and fairness assessments."""
