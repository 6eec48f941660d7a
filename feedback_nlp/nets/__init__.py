"""Plain `nn.Module`s and pure tensor functions shared by training and serving.

Why its own package: a LightningModule (lightning_modules/) wires these nets to losses, metrics
and optimizers; the serving predictors (serving/) load the same nets from an export folder.
Nothing here imports Lightning, a DataModule or the serving code.
"""
