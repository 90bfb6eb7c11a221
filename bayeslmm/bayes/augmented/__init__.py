"""Samplers by data augmentation: latent liabilities made a block of a Gibbs sampler so that
the hyperparameters are drawn collapsed over the latent genetic values."""
