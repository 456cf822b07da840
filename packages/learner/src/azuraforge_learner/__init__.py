"""azuraforge_learner: layers, losses, optimizers and the Learner fit loop, on azuraforge_core."""

from . import init, metrics, timeseries
from .callbacks import (
    Callback,
    EarlyStopping,
    History,
    LambdaCallback,
    ModelCheckpoint,
    ProgressBar,
)
from .data import (
    DataLoader,
    MinMaxScaler,
    StandardScaler,
    chronological_split,
    make_windows,
    scaler_from_state,
)
from .layers import (
    GELU,
    AvgPool2D,
    BatchNorm1d,
    BatchNorm2d,
    Conv2D,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .learner import Learner, NonFiniteLossError
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, Loss, MSELoss
from .module import Module, Parameter, Sequential, build, registered_modules
from .optim import SGD, Adam, AdamW, Optimizer, RMSprop, clip_grad_norm
from .recurrent import GRU, LSTM
from .schedulers import CosineAnnealingLR, LRScheduler, ReduceLROnPlateau, StepLR
from .serialization import (
    ModelFileError,
    load_checkpoint,
    load_model,
    read_metadata,
    save_checkpoint,
    save_model,
)
from .timeseries import (
    SeasonalProfile,
    calendar_features,
    compare_forecasts,
    describe_comparison,
    forecast_metrics,
)

__all__ = [
    # model building
    "Module", "Parameter", "Sequential", "build", "registered_modules", "init",
    # layers
    "GELU", "GRU", "LSTM", "AvgPool2D", "BatchNorm1d", "BatchNorm2d", "Conv2D", "Dropout",
    "Embedding", "Flatten", "Identity", "LayerNorm", "LeakyReLU", "Linear", "MaxPool2D", "ReLU",
    "Sigmoid", "Softmax", "Tanh",
    # training
    "SGD", "Adam", "AdamW", "BCEWithLogitsLoss", "Callback", "CosineAnnealingLR",
    "CrossEntropyLoss", "EarlyStopping", "History", "HuberLoss", "L1Loss", "LRScheduler",
    "LambdaCallback", "Learner", "Loss", "MSELoss", "ModelCheckpoint", "NonFiniteLossError",
    "Optimizer", "ProgressBar", "RMSprop", "ReduceLROnPlateau", "StepLR", "clip_grad_norm",
    "metrics",
    # data and time series
    "DataLoader", "MinMaxScaler", "StandardScaler", "chronological_split", "make_windows",
    "scaler_from_state", "SeasonalProfile", "calendar_features", "compare_forecasts",
    "describe_comparison", "forecast_metrics", "timeseries",
    # saving and loading
    "ModelFileError", "load_checkpoint", "load_model", "read_metadata", "save_checkpoint",
    "save_model",
]  # fmt: skip
