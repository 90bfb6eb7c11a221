"""What the user reads: result files in GCTA/GEMMA/PLINK layouts, staged outputs, figures."""
