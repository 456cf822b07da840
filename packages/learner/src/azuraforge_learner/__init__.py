"""azuraforge_learner: layers, losses, optimizers and the Learner fit loop, on azuraforge_core."""

from .module import Module, Parameter, Sequential, build, registered_modules

__all__ = ["Module", "Parameter", "Sequential", "build", "registered_modules"]

# --- training: losses, optimizers, schedulers, Learner, callbacks, metrics, data, save/load ---
from . import metrics
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
from .learner import Learner, NonFiniteLossError
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, Loss, MSELoss
from .optim import SGD, Adam, AdamW, Optimizer, RMSprop, clip_grad_norm
from .schedulers import CosineAnnealingLR, LRScheduler, ReduceLROnPlateau, StepLR
from .serialization import (
    ModelFileError,
    load_checkpoint,
    load_model,
    read_metadata,
    save_checkpoint,
    save_model,
)

__all__ = [
    *__all__,
    "SGD", "Adam", "AdamW", "BCEWithLogitsLoss", "Callback", "CosineAnnealingLR",
    "CrossEntropyLoss", "DataLoader", "EarlyStopping", "History", "HuberLoss", "L1Loss",
    "LRScheduler", "LambdaCallback", "Learner", "Loss", "MSELoss", "MinMaxScaler",
    "ModelCheckpoint", "ModelFileError", "NonFiniteLossError", "Optimizer", "ProgressBar",
    "RMSprop", "ReduceLROnPlateau", "StandardScaler", "StepLR", "chronological_split",
    "clip_grad_norm", "load_checkpoint", "load_model", "make_windows", "metrics",
    "read_metadata", "save_checkpoint", "save_model", "scaler_from_state",
]  # fmt: skip
# --- end training block ---

# --- layers: dense, convolution, pooling, normalisation, embedding, activations, recurrent ---
from . import init
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
from .recurrent import GRU, LSTM

__all__ += [
    "GELU", "GRU", "LSTM", "AvgPool2D", "BatchNorm1d", "BatchNorm2d", "Conv2D", "Dropout",
    "Embedding", "Flatten", "Identity", "LayerNorm", "LeakyReLU", "Linear", "MaxPool2D", "ReLU",
    "Sigmoid", "Softmax", "Tanh", "init",
]  # fmt: skip
# --- end layers block ---

# --- time series: calendar features, seasonal profile, forecasts vs baselines ---
from . import timeseries  # noqa: E402 - after the layers block's `__all__ +=`
from .timeseries import (  # noqa: E402
    SeasonalProfile,
    calendar_features,
    compare_forecasts,
    describe_comparison,
    forecast_metrics,
)

__all__ = [
    *__all__, "SeasonalProfile", "calendar_features", "compare_forecasts",
    "describe_comparison", "forecast_metrics", "timeseries",
]  # fmt: skip
# --- end time series block ---
