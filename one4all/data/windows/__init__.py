"""Task protocols and their datasets: forecasting, imputation, anomaly, classification, short-term
and zero-shot windows cut from a source's splits."""
