"""PainSite's ML core: pure PyTorch/NumPy/scikit-learn, no Django (see docs/ml.md).

The Django side uses only the names listed in docs/architecture.md ("The ML core interface").
"""
