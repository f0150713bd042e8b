"""TimesNet (Wu et al., ICLR 2023): fold the series at its dominant periods and model 2-D variation.

Instance norm -> value embedding (circular Conv1d over channels, k=3) + sinusoidal positions ->
a linear map over time extends the sequence from `seq_len` to `seq_len + horizon` steps ->
`n_layers` TimesBlocks, each followed by one shared LayerNorm -> linear projection to the channels;
the forecast is the last `horizon` steps, denormalised.

TimesBlock: the top-k frequencies of the FFT amplitude (averaged over batch and features) give
periods p = T // f; the sequence is zero-padded to a multiple of p, reshaped to a 2-D grid
(T/p rows x p columns), processed by Inception block -> GELU -> Inception block, reshaped back, and
the k results are summed with softmax weights from each sample's amplitudes, plus a residual.

Per output kind (Time-Series-Library's task branches): reconstruct (imputation, anomaly
detection) skips the time extension and projects every step back to the channels; with an
observation mask (imputation) the instance norm uses the observed entries only. Classify uses no
instance norm (the data side standardises), then GELU and dropout on the last block's output,
zeroes the padded steps (mask), flattens `[seq_len, d_model]` and maps it to the class logits.

Time-feature marks (`time_features`, one4all.marks): `timeF` adds Time-Series-Library's
TimeFeatureEmbedding (a Linear without bias from the marks to d_model) to the value embedding,
`fixed` its sinusoidal calendar tables; `none` reads values only. TSLib's TimesNet scripts use
`timeF`, and so does `experiment=long_term/etth1_96_timesnet`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from one4all.contract import IOSpec, Network
from one4all.errors import UserError
from one4all.marks import check_kind, mark_names
from one4all.models.encoder import InstanceNorm, ObservedNorm, mark_embedding


def top_periods(x: torch.Tensor, k: int) -> tuple[list[int], torch.Tensor]:
    """Periods of the k strongest non-zero frequencies of `x[b, t, d]`, and their amplitudes `[b, k]`.

    Frequencies are chosen on the batch mean (one grid per batch); the amplitudes stay per sample
    and carry gradients into the aggregation weights.
    """
    amplitude = torch.fft.rfft(x.float(), dim=1).abs()
    strength = amplitude.detach().mean(dim=(0, 2))
    strength[0] = 0.0
    top = torch.topk(strength, k).indices
    periods = [x.shape[1] // int(f) for f in top]
    return periods, amplitude.mean(dim=-1)[:, top]


class Inception(nn.Module):
    """Mean of 2-D convolutions with kernels 1, 3, ..., 2n-1 ('same' padding).

    The mean of convolutions equals one convolution with the mean of the zero-padded kernels, so it
    runs as a single (2n-1)x(2n-1) convolution: the same function and gradients at 121/286 of the
    multiply-adds for n=6. Each kernel keeps its own parameters (Kaiming-normal, fan_out, zero bias).
    """

    def __init__(self, in_channels: int, out_channels: int, n_kernels: int) -> None:
        super().__init__()
        self.weights = nn.ParameterList()
        for i in range(n_kernels):
            weight = torch.empty(out_channels, in_channels, 2 * i + 1, 2 * i + 1)
            nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
            self.weights.append(nn.Parameter(weight))
        self.biases = nn.Parameter(torch.zeros(n_kernels, out_channels))
        self.reach = n_kernels - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = sum(F.pad(w, [self.reach - (w.shape[-1] // 2)] * 4) for w in self.weights) / len(self.weights)
        return F.conv2d(x, kernel, self.biases.mean(dim=0), padding=self.reach)


class TimesBlock(nn.Module):
    """Period-folded 2-D Inception processing of `[b, t, d_model]`, with a residual connection."""

    def __init__(self, d_model: int, d_ff: int, n_kernels: int, top_k: int) -> None:
        super().__init__()
        self.top_k = top_k
        self.conv = nn.Sequential(Inception(d_model, d_ff, n_kernels), nn.GELU(), Inception(d_ff, d_model, n_kernels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps, features = x.shape
        periods, amplitudes = top_periods(x, self.top_k)
        outputs = []
        for period in periods:
            rows = math.ceil(steps / period)
            grid = F.pad(x, (0, 0, 0, rows * period - steps))
            grid = grid.reshape(batch, rows, period, features).permute(0, 3, 1, 2)
            out = self.conv(grid).permute(0, 2, 3, 1).reshape(batch, rows * period, features)
            outputs.append(out[:, :steps])
        weights = amplitudes.softmax(dim=1).to(x.dtype)
        mixed = (torch.stack(outputs, dim=-1) * weights[:, None, None, :]).sum(dim=-1)
        return mixed + x


def sinusoidal_positions(steps: int, d_model: int) -> torch.Tensor:
    """Transformer positional encoding `[steps, d_model]`: sin on even, cos on odd features."""
    position = torch.arange(steps, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(steps, d_model)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
    return table


class TimesNet(Network):
    """TimesNet: `[b, seq_len, c]` -> forecast `[b, horizon, c]`, reconstruction `[b, seq_len, c]` or
    class logits `[b, n_classes]` (channels mixed by the embedding)."""

    channel_independent = False

    def __init__(
        self,
        io: IOSpec,
        d_model: int = 16,
        d_ff: int = 32,
        n_layers: int = 2,
        top_k: int = 5,
        n_kernels: int = 6,
        dropout: float = 0.1,
        time_features: str = "none",
    ) -> None:
        super().__init__()
        check_kind(time_features)
        self.time_features = time_features
        steps = io.seq_len + io.horizon
        if not 1 <= top_k <= steps // 2:
            raise UserError(f"model.top_k={top_k} must be between 1 and (seq_len + horizon) // 2 = {steps // 2}")
        self.io = io
        self.norm, self.observed_norm = InstanceNorm(), ObservedNorm()
        self.value_embedding = nn.Conv1d(io.n_channels, d_model, kernel_size=3, padding=1, padding_mode="circular",
                                         bias=False)
        nn.init.kaiming_normal_(self.value_embedding.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.mark_embedding = mark_embedding(time_features, mark_names(time_features, io.freq), d_model)
        self.register_buffer("positions", sinusoidal_positions(io.seq_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.extend = nn.Linear(io.seq_len, steps) if io.kind == "forecast" else None
        self.blocks = nn.ModuleList(TimesBlock(d_model, d_ff, n_kernels, top_k) for _ in range(n_layers))
        self.layer_norm = nn.LayerNorm(d_model)
        if io.kind == "classify":
            self.projection = nn.Linear(d_model * io.seq_len, io.n_classes)
        else:
            self.projection = nn.Linear(d_model, io.n_channels)

    def _encode(self, z: torch.Tensor, marks: torch.Tensor | None) -> torch.Tensor:
        """Embedding (+ the time extension when forecasting) and the TimesBlocks: `[b, steps, d_model]`."""
        hidden = self.value_embedding(z.transpose(1, 2)).transpose(1, 2) + self.positions
        if self.mark_embedding is not None:
            hidden = hidden + self.mark_embedding(marks)
        hidden = self.dropout(hidden)
        if self.extend is not None:
            hidden = self.extend(hidden.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            hidden = self.layer_norm(block(hidden))
        return hidden

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                marks: torch.Tensor | None = None) -> torch.Tensor:
        """`x[batch, seq_len, channels]` (+ `mask`, 1 = observed; + `marks[batch, seq_len, n_marks]`
        when `time_features` is set) -> the output of `io.kind`."""
        if self.io.kind == "classify":
            hidden = self.dropout(F.gelu(self._encode(x, marks)))
            if mask is not None:  # a step is padding when none of its channels is observed
                hidden = hidden * mask.amax(dim=-1, keepdim=True)
            return self.projection(hidden.flatten(start_dim=1))
        z, mean, std = self.norm.normalise(x) if mask is None else self.observed_norm.normalise(x, mask)
        out = self.projection(self._encode(z, marks))
        if self.io.kind == "forecast":
            out = out[:, -self.io.horizon:]
        return self.norm.denormalise(out, mean, std)
