"""Realistic synthetic EEG, generated lazily and quantized to an ADC grid.

Why quantized: real EEG is recorded as 16/24-bit integers, and that grid is what makes it
compress (EEGBCI: ~3.8x as int16 counts vs float32 bytes, 1.4x as float32). Continuous float
noise compresses ~1.1x and would mislead every size benchmark, so every sample here is
``counts * resolution_uv * 1e-6`` volts with integer ``counts`` (the source's ``quantization``
says so, and :func:`eegbench.save` stores the counts losslessly).

Signal model (amplitudes are standard deviations in µV, before quantization):

* **background**: 12 latent sources with a 1/f^beta power spectrum (beta 1.4-2.2, knee at 1 Hz),
  mixed into the channels by a smooth spatial kernel on the scalp plus a common-mode share
  (neighbouring channels correlate like real EEG); ``background_uv`` per channel;
* **alpha**: a narrow-band (8.5-11.5 Hz per subject) occipital source; narrow-band noise waxes
  and wanes on its own, so it comes in bursts; ``alpha_uv``;
* **mu/beta**: one narrow-band source over each motor cortex (C3, C4), desynchronised (amplitude
  x0.4) during the contralateral task events, so window targets are learnable;
* **line noise** at ``line_freq`` (and its 3rd harmonic below Nyquist), per-channel amplitude;
* **sensor noise**: white, ``noise_uv`` (triangular distribution: the sum of two uniform
  random bytes, 3x cheaper than Gaussian draws and indistinguishable after quantization);
* **artefacts**: eye blinks (~100 µV, frontal, every ~7 s) and muscle bursts (20-100 Hz,
  temporal, every ~40 s);
* **events**: EEGBCI-like annotations ``T0`` (rest, 4.2 s) alternating with ``T1`` (left hand)
  or ``T2`` (right hand) (4.1 s).

Laziness and determinism: samples are generated in fixed blocks of ``H`` samples (a power of two
near 4 s), each a pure function of ``(seed, recording, block)``, so ``read(start, stop)`` of any
range equals the same range of a whole read, bit for bit, and a dataset larger than memory can be
saved block by block. Block joins are seamless: the coloured latent sources are built by weighted
overlap-add of independent segments of ``2H`` samples with a sine window at 50 % overlap
(``w(n)^2 + w(n+H)^2 = 1``, so the variance is constant and every segment fades in and out
smoothly); white noise has no memory; line noise, event-related modulation and artefacts are
functions of absolute time. Identical on a given platform; BLAS or libm differences between
machines may flip a count by one in rare cases.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import OptionError
from ..model import Annotations, Dataset, Recording
from ..quantization import Quantization

__all__ = ["GENERATOR_VERSION", "PROFILES", "SyntheticParams", "SyntheticSource", "channel_names",
           "make_dataset", "make_profile"]

#: Bumped whenever the same parameters would generate different samples.
GENERATOR_VERSION = 1

# Unit vectors (x right, y front, z up) of the 64 channels of the 10-10 system used by EEGBCI,
# fitted on MNE's standard_1005 montage. Ordered so that any prefix is spread over the head:
# the 19 channels of the 10-20 system first, then 10-10 additions in symmetric pairs.
_TEN_TEN: dict[str, tuple[float, float, float]] = {
    "Fp1": (-0.289, 0.953, -0.097), "Fp2": (0.273, 0.957, -0.097), "F7": (-0.762, 0.629, -0.156),
    "F3": (-0.541, 0.733, 0.412), "Fz": (-0.006, 0.764, 0.646), "F4": (0.537, 0.745, 0.397),
    "F8": (0.755, 0.636, -0.159), "T7": (-0.989, 0.003, -0.146), "C3": (-0.734, 0.052, 0.677),
    "Cz": (-0.006, 0.074, 0.997), "C4": (0.737, 0.060, 0.673), "T8": (0.989, 0.015, -0.149),
    "P7": (-0.788, -0.613, -0.061), "P3": (-0.551, -0.638, 0.538), "Pz": (-0.006, -0.632, 0.775),
    "P4": (0.555, -0.631, 0.541), "P8": (0.784, -0.617, -0.062), "O1": (-0.301, -0.952, 0.056),
    "O2": (0.288, -0.956, 0.056), "FC1": (-0.371, 0.448, 0.813), "FC2": (0.363, 0.459, 0.811),
    "CP1": (-0.364, -0.309, 0.879), "CP2": (0.374, -0.307, 0.875), "FC5": (-0.886, 0.396, 0.241),
    "FC6": (0.882, 0.407, 0.238), "CP5": (-0.891, -0.334, 0.307), "CP6": (0.896, -0.324, 0.305),
    "AF3": (-0.343, 0.922, 0.178), "AF4": (0.341, 0.922, 0.184), "PO3": (-0.380, -0.858, 0.345),
    "PO4": (0.367, -0.866, 0.340), "F1": (-0.293, 0.754, 0.588), "F2": (0.294, 0.760, 0.579),
    "C1": (-0.393, 0.067, 0.917), "C2": (0.395, 0.072, 0.916), "P1": (-0.293, -0.635, 0.715),
    "P2": (0.303, -0.627, 0.718), "AF7": (-0.544, 0.828, -0.135), "AF8": (0.533, 0.835, -0.136),
    "PO7": (-0.566, -0.824, -0.004), "PO8": (0.558, -0.830, -0.005), "FT7": (-0.925, 0.344, -0.162),
    "FT8": (0.918, 0.360, -0.165), "TP7": (-0.939, -0.325, -0.112), "TP8": (0.939, -0.324, -0.115),
    "F5": (-0.705, 0.694, 0.148), "F6": (0.705, 0.696, 0.139), "C5": (-0.952, 0.030, 0.304),
    "C6": (0.953, 0.041, 0.300), "P5": (-0.724, -0.636, 0.267), "P6": (0.720, -0.641, 0.268),
    "FCz": (-0.006, 0.455, 0.890), "CPz": (-0.006, -0.307, 0.952), "AFz": (-0.007, 0.949, 0.315),
    "POz": (-0.007, -0.875, 0.483), "Fpz": (-0.008, 0.999, -0.047), "Oz": (-0.008, -0.993, 0.115),
    "FC3": (-0.683, 0.436, 0.585), "FC4": (0.681, 0.444, 0.582), "CP3": (-0.680, -0.324, 0.658),
    "CP4": (0.688, -0.317, 0.653), "T9": (-0.860, 0.005, -0.510), "T10": (0.854, -0.000, -0.520),
    "Iz": (-0.009, -0.968, -0.249),
}

EVENT_MEANING = {"T0": "rest", "T1": "left hand", "T2": "right hand"}
_N_BACKGROUND = 12  # latent 1/f sources
# RNG stream ids: every random draw is keyed by (seed, stream, ...), never by call order
_MODEL, _SEGMENT, _WHITE, _MUSCLE, _SUBJECT, _EVENTS = range(6)


def channel_names(n_channels: int) -> list[str]:
    """10-20 names for up to 19 channels, 10-10 names up to 64, else ``E1``..``En`` (EGI/HBN style)."""
    if n_channels <= len(_TEN_TEN):
        return list(_TEN_TEN)[:n_channels]
    return [f"E{i + 1}" for i in range(n_channels)]


def _positions(ch_names: Sequence[str]) -> np.ndarray:
    """Unit vectors of the channels: 10-10 table when every name is in it (any case), else a
    Fibonacci lattice over the upper 60 % of the sphere (front first), like a dense EGI net."""
    table = {k.upper(): v for k, v in _TEN_TEN.items()}
    if all(n.upper() in table for n in ch_names):
        return np.array([table[n.upper()] for n in ch_names], dtype=np.float64)
    n = len(ch_names)
    i = np.arange(n) + 0.5
    z = 1.0 - 1.2 * i / n  # from the vertex down to 20 % below the equator
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i + np.pi / 2
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _unit(v: Sequence[float]) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _topography(pos: np.ndarray, centre: Sequence[float], width: float) -> np.ndarray:
    """Gaussian weight of each channel by its chord distance to ``centre`` (peak 1)."""
    d2 = ((pos - _unit(centre)) ** 2).sum(axis=1)
    return np.exp(-d2 / (2.0 * width * width))


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


# ---------------------------------------------------------------------------------------------
# parameters and events
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticParams:
    """Everything that defines one synthetic recording (small and picklable).

    Amplitudes are in µV (standard deviation per channel, before quantization); ``sfreq`` in
    Hz; ``n_times`` in samples; ``resolution_uv`` is the µV value of one ADC count.
    """

    seed: int
    index: int
    subject: int
    n_channels: int
    sfreq: float
    n_times: int
    ch_names: tuple[str, ...]
    adc_bits: int = 16
    resolution_uv: float = 0.5
    line_freq: float | None = 50.0
    line_uv: float = 2.0
    background_uv: float = 20.0
    alpha_uv: float = 8.0
    mu_uv: float = 5.0
    noise_uv: float = 1.5
    alpha: bool = True
    events: bool = True
    artifacts: bool = True

    @property
    def dtype(self) -> str:
        return "int16" if self.adc_bits <= 16 else "int32"

    @property
    def block(self) -> int:
        """Generation block ``H`` in samples: a power of two near 4 s (at least 256)."""
        return int(max(256, 2 ** round(np.log2(4.0 * self.sfreq))))


def _event_table(p: SyntheticParams) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """EEGBCI-like task events: onsets (s, on the sample grid), durations (s), descriptions."""
    if not p.events:
        return np.zeros(0), np.zeros(0), []
    rng = _rng(p.seed, _EVENTS, p.index)
    duration = p.n_times / p.sfreq
    onsets, durations, labels = [], [], []
    t, rest = 0.0, True
    while t < duration:
        label = "T0" if rest else ("T1" if rng.random() < 0.5 else "T2")
        length = 4.2 if rest else 4.1
        onset = round(t * p.sfreq) / p.sfreq
        onsets.append(onset)
        durations.append(min(length, duration - onset))  # the last trial ends with the recording (MNE warns otherwise)
        labels.append(label)
        t += length
        rest = not rest
    return np.array(onsets), np.array(durations), labels


def _subject_traits(seed: int, subject: int) -> dict[str, Any]:
    """Per-subject constants shared by all runs of a subject (alpha frequency, gains, sex, age)."""
    rng = _rng(seed, _SUBJECT, subject)
    return {"alpha_freq": float(rng.uniform(8.5, 11.5)), "alpha_gain": float(rng.uniform(0.5, 1.5)),
            "background_gain": float(rng.uniform(0.8, 1.2)), "sex": "F" if rng.random() < 0.5 else "M",
            "age_fraction": float(rng.random())}


def _age(traits: dict[str, Any], age_range: tuple[float, float]) -> int:
    lo, hi = int(age_range[0]), int(age_range[1])
    return min(hi, lo + int(traits["age_fraction"] * (hi - lo + 1)))


# ---------------------------------------------------------------------------------------------
# the lazy source
# ---------------------------------------------------------------------------------------------
class _Model:
    """Per-recording constants derived from the parameters (built once per process).

    Everything except white noise and artefacts is one matrix product per block:
    ``counts ~ mix (n_channels x n_rows) @ rows (n_rows x H)`` where the rows are the latent
    sources (12 background, alpha, two mu, the mu ones times their desynchronisation gain) and
    cos/sin of the line frequencies. ``mix`` is in units of the white-noise step (see
    :meth:`SyntheticSource._block`) so that the integer noise is added without scaling.
    """

    def __init__(self, p: SyntheticParams) -> None:
        rng = _rng(p.seed, _MODEL, p.index)
        traits = _subject_traits(p.seed, p.subject)
        fs, H, n = p.sfreq, p.block, p.n_channels
        pos = _positions(p.ch_names)
        # --- latent source spectra (amplitude per rfft bin of a 2H segment) ---------------------
        f = np.fft.rfftfreq(2 * H, 1.0 / fs)
        shapes = [(f * f + 1.0) ** (-beta / 4.0)  # PSD ~ 1/(f^2 + knee^2)^(beta/2), knee 1 Hz
                  for beta in rng.uniform(1.4, 2.2, _N_BACKGROUND)]
        a_f = traits["alpha_freq"]
        shapes.append(np.exp(-0.5 * ((f - a_f) / 0.7) ** 2))  # occipital alpha
        for _side in range(2):  # left and right mu, with a weaker beta at twice the frequency
            mu_f = a_f + rng.uniform(0.5, 1.5)
            shapes.append(np.exp(-0.5 * ((f - mu_f) / 0.8) ** 2) + 0.35 * np.exp(-0.5 * ((f - 2 * mu_f) / 2.0) ** 2))
        shapes = np.array(shapes)
        shapes[:, 0] = 0.0  # no DC
        # unit variance of irfft(shape * (a + ib)) with a, b ~ N(0, 1): var = 4 sum(s^2) / N^2
        shapes *= (2 * H) / (2.0 * np.sqrt((shapes ** 2).sum(axis=1, keepdims=True)))
        self.shapes = shapes
        self.window = np.sin(np.pi * (np.arange(2 * H) + 0.5) / (2 * H))
        # --- spatial mixing (µV per unit source) ------------------------------------------------
        centres = rng.normal(size=(_N_BACKGROUND, 3))
        centres[:, 2] = np.abs(centres[:, 2])  # sources in the upper half of the head
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        d2 = ((pos[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        mix = np.exp(-d2 / (2 * 0.5 ** 2)) + 0.15  # + a common mode shared through the reference
        mix /= np.linalg.norm(mix, axis=1, keepdims=True)
        gain = rng.uniform(0.8, 1.25, n) * p.background_uv * traits["background_gain"]
        columns = [mix * gain[:, None]]
        a_gain = p.alpha_uv * traits["alpha_gain"] if p.alpha else 0.0
        columns.append(a_gain * _topography(pos, (0.0, -0.95, 0.3), 0.45)[:, None])
        mu = p.mu_uv if p.alpha else 0.0
        columns += [mu * _topography(pos, _TEN_TEN[c], 0.35)[:, None] for c in ("C3", "C4")]
        # --- line noise: common phase, per-channel amplitude; rows cos(wt), sin(wt) -------------
        self.line_freqs: list[float] = []
        if p.line_freq:
            amp = p.line_uv * rng.lognormal(0.0, 0.5, n)
            phase = rng.uniform(0, 2 * np.pi) + rng.normal(0.0, 0.3, n)
            for k, rel in ((1, 1.0), (3, 0.2)):
                if k * p.line_freq < fs / 2:
                    self.line_freqs.append(k * p.line_freq)
                    # a cos(wt + phi) = a cos(phi) cos(wt) - a sin(phi) sin(wt)
                    columns += [(rel * amp * np.cos(phase))[:, None], (-rel * amp * np.sin(phase))[:, None]]
        # white noise: sum of two uniform int8 draws (triangular, sd 104.5 steps) -> noise_uv
        self.noise_step_counts = p.noise_uv / 104.5 / p.resolution_uv  # counts per noise step
        self.mix = (np.hstack(columns) / (p.resolution_uv * self.noise_step_counts)).astype(np.float32)
        # BLAS threads on tiny products are slower than one thread: multiply in column slices
        # small enough for OpenBLAS to stay single-threaded (m*n*k < 2**18)
        self.mm_cols = int(max(16, min(H, 2 ** 18 // max(1, n * self.mix.shape[1]))))
        # --- event-related desynchronisation: gain knots in seconds ----------------------------
        onsets, durations, labels = _event_table(p)
        self.erd = []
        for hemi_label in ("T2", "T1"):  # left hemisphere (C3) desynchronises for the right hand (T2)
            knots_t, knots_g = [-1.0], [1.0]
            for o, d, lab in zip(onsets, durations, labels):
                if lab == hemi_label:
                    knots_t += [o + 0.2, o + 0.8, o + d, o + d + 0.5]
                    knots_g += [1.0, 0.4, 0.4, 1.0]
            self.erd.append((np.array(knots_t), np.array(knots_g)))
        # --- artefacts (µV) ------------------------------------------------------------------
        duration = p.n_times / fs
        n_blinks = rng.poisson(duration / 7.0) if p.artifacts else 0
        self.blink_at = np.sort(np.round(rng.uniform(0, duration, n_blinks) * fs).astype(np.int64))
        self.blink_amp = np.clip(rng.normal(100.0, 25.0, n_blinks), 30.0, None)
        self.blink_topo = _topography(pos, (0.0, 1.0, -0.35), 0.4)
        blen = max(2, int(round(0.35 * fs)))
        u = (np.arange(blen) + 0.5) / blen
        self.blink_shape = np.sin(np.pi * u ** 0.7) ** 2  # fast rise, slower decay
        n_muscle = rng.poisson(duration / 40.0) if p.artifacts else 0
        self.muscle_at = np.sort(np.round(rng.uniform(0, duration, n_muscle) * fs).astype(np.int64))
        self.muscle_len = np.round(rng.uniform(0.4, 1.5, n_muscle) * fs).astype(np.int64)
        self.muscle_amp = rng.uniform(8.0, 25.0, n_muscle)
        self.muscle_side = rng.integers(0, 2, n_muscle)
        self.muscle_topo = [_topography(pos, (-1.0, 0.1, -0.2), 0.4), _topography(pos, (1.0, 0.1, -0.2), 0.4)]


class SyntheticSource:
    """Lazy, deterministic synthetic samples of one recording (see the module docstring).

    ``read`` returns float32 volts; ``read_counts`` the integer ADC counts (all channels).
    Pickles as its :class:`SyntheticParams` only.
    """

    _CACHE_BLOCKS = 4

    def __init__(self, params: SyntheticParams) -> None:
        self.params = params
        self.n_channels = params.n_channels
        self.n_times = params.n_times
        n = params.n_channels
        self.quantization = Quantization(np.full(n, params.resolution_uv), np.zeros(n), np.full(n, 1e-6),
                                         params.dtype)
        self._reset()

    def _reset(self) -> None:
        self._model: _Model | None = None
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._segments: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"params": self.params, "n_channels": self.n_channels, "n_times": self.n_times,
                "quantization": self.quantization}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    @property
    def model(self) -> _Model:
        if self._model is None:
            self._model = _Model(self.params)
        return self._model

    # --- generation -------------------------------------------------------------------------
    def _segment(self, j: int) -> np.ndarray:
        """Latent sources over samples ``[(j-1)H, (j+1)H)``, windowed; ``(n_sources, 2H)``."""
        seg = self._segments.get(j)
        if seg is None:
            p, m = self.params, self.model
            rng = _rng(p.seed, _SEGMENT, p.index, j)
            shape = m.shapes.shape
            spec = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
            seg = np.fft.irfft(spec * m.shapes, n=2 * p.block, axis=1) * m.window
            self._segments[j] = seg
            while len(self._segments) > 2:  # consecutive blocks share one segment
                self._segments.popitem(last=False)
        return seg

    def _block(self, k: int) -> np.ndarray:
        """Integer counts of block ``k`` (samples ``[kH, (k+1)H)``), ``(n_channels, H)``."""
        p, m = self.params, self.model
        H = p.block
        rows = self._segment(k)[:, H:] + self._segment(k + 1)[:, :H]  # weighted overlap-add
        t = (k * H + np.arange(H)) / p.sfreq  # absolute seconds
        for side in range(2):  # mu rows times their event-related gain
            rows[_N_BACKGROUND + 1 + side] *= np.interp(t, *m.erd[side])
        if m.line_freqs:
            w = 2.0 * np.pi * np.array(m.line_freqs)[:, None] * t
            rows = np.vstack([rows, np.stack([np.cos(w), np.sin(w)], axis=1).reshape(-1, H)])
        rows = rows.astype(np.float32)
        x = np.empty((p.n_channels, H), dtype=np.float32)
        for s in range(0, H, m.mm_cols):
            np.matmul(m.mix, rows[:, s:s + m.mm_cols], out=x[:, s:s + m.mm_cols])
        noise = np.frombuffer(_rng(p.seed, _WHITE, p.index, k).bytes(2 * x.size), dtype=np.int8)
        x += noise[:x.size].reshape(x.shape)
        x += noise[x.size:].reshape(x.shape)
        x *= np.float32(m.noise_step_counts)  # -> counts
        self._add_artifacts(x, k * H)
        np.rint(x, out=x)
        hi = 2 ** (p.adc_bits - 1) - 1
        np.clip(x, -hi - 1, hi, out=x)
        return x.astype(p.dtype)

    def _add_artifacts(self, x: np.ndarray, b0: int) -> None:
        """Add blinks and muscle bursts overlapping samples ``[b0, b0 + H)`` to ``x`` (counts)."""
        m, p = self.model, self.params
        H, to_counts = x.shape[1], 1.0 / p.resolution_uv
        blen = m.blink_shape.size
        lo, hi = np.searchsorted(m.blink_at, [b0 - blen, b0 + H])
        for at, amp in zip(m.blink_at[lo:hi], m.blink_amp[lo:hi]):
            s, e = max(at, b0), min(at + blen, b0 + H)
            if e > s:
                x[:, s - b0:e - b0] += (amp * to_counts * m.blink_topo)[:, None] * m.blink_shape[s - at:e - at]
        for i in np.flatnonzero((m.muscle_at < b0 + H) & (m.muscle_at + m.muscle_len > b0)):
            at, length = int(m.muscle_at[i]), int(m.muscle_len[i])
            burst = self._muscle_burst(int(i), length)
            s, e = max(at, b0), min(at + length, b0 + H)
            topo = m.muscle_amp[i] * to_counts * m.muscle_topo[m.muscle_side[i]]
            x[:, s - b0:e - b0] += topo[:, None] * burst[s - at:e - at]

    def _muscle_burst(self, i: int, length: int) -> np.ndarray:
        """Unit-variance 20-100 Hz noise with a Hann envelope; a function of the burst alone."""
        p = self.params
        noise = _rng(p.seed, _MUSCLE, p.index, i).standard_normal(length)
        spec = np.fft.rfft(noise)
        f = np.fft.rfftfreq(length, 1.0 / p.sfreq)
        spec[(f < 20.0) | (f > min(100.0, 0.45 * p.sfreq))] = 0.0
        burst = np.fft.irfft(spec, n=length)
        burst /= burst.std() + 1e-12
        return burst * np.hanning(length)

    def _cached_block(self, k: int) -> np.ndarray:
        with self._lock:
            block = self._cache.get(k)
            if block is not None:
                self._cache.move_to_end(k)
                return block
            block = self._block(k)  # under the lock: the segment cache is shared too
            self._cache[k] = block
            while len(self._cache) > self._CACHE_BLOCKS:
                self._cache.popitem(last=False)
            return block

    # --- SignalSource ---------------------------------------------------------------------------
    def read_counts(self, start: int, stop: int) -> np.ndarray:
        """Integer ADC counts of samples ``[start, stop)``, all channels, ``(n_channels, stop - start)``."""
        start, stop = int(start), int(stop)
        H = self.params.block
        out = np.empty((self.n_channels, max(stop - start, 0)), dtype=self.params.dtype)
        for k in range(start // H, -(-stop // H)):
            block = self._cached_block(k)
            s, e = max(start, k * H), min(stop, (k + 1) * H)
            out[:, s - start:e - start] = block[:, s - k * H:e - k * H]
        return out

    def read(self, start: int, stop: int, channels: np.ndarray | None) -> np.ndarray:
        """Float32 volts of samples ``[start, stop)`` (``counts * resolution_uv * 1e-6``)."""
        counts = self.read_counts(start, stop)
        if channels is not None:
            counts = counts[np.asarray(channels, dtype=np.int64)]
        return np.ascontiguousarray(self.quantization.reconstruct(counts, channels))

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self._segments.clear()


# ---------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------
def _per_recording(value: Any, n: int, name: str) -> list[Any]:
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != n:
            raise OptionError(f"{name} has {len(value)} values for {n} recordings; give one value or one per recording")
        return list(value)
    return [value] * n


def make_dataset(n_recordings: int = 4, n_channels: int | Sequence[int] = 32,
                 sfreq: float | Sequence[float] = 250.0, duration_s: float | Sequence[float] = 60.0,
                 seed: int = 0, *, adc_bits: int = 16, resolution_uv: float | None = None,
                 line_freq: float | None = 50.0, line_uv: float = 2.0, background_uv: float = 20.0,
                 alpha_uv: float = 8.0, mu_uv: float = 5.0, noise_uv: float = 1.5, alpha: bool = True,
                 events: bool = True,
                 artifacts: bool = True, ch_names: Sequence[str] | None = None, runs_per_subject: int = 1,
                 task: str = "motor", age_range: tuple[float, float] = (18, 65)) -> Dataset:
    """A lazy :class:`~eegbench.model.Dataset` of realistic, ADC-quantized synthetic EEG.

    Parameters
    ----------
    n_channels, sfreq, duration_s
        Channels, Hz, seconds; a scalar or one value per recording (heterogeneous datasets).
    seed
        Non-negative integer; the same arguments give the same samples.
    adc_bits, resolution_uv
        ADC word size (16 -> int16 counts, up to 32 -> int32; counts are clipped to the range)
        and µV per count (default 0.5 µV for <= 16 bits, 1/32 µV above, like BioSemi).
    line_freq, line_uv
        Mains frequency in Hz (None: no line noise) and its mean amplitude in µV.
    background_uv, alpha_uv, mu_uv, noise_uv
        Standard deviations (µV) of the 1/f background, the occipital alpha (times a per-subject
        gain of 0.5-1.5), each motor mu rhythm, and the white sensor noise.
    alpha, events, artifacts
        Switch the alpha/mu rhythms, the T0/T1/T2 annotations, and blinks/muscle bursts.
    ch_names
        Channel names for every recording (default: 10-20/10-10 up to 64 channels, else E1..En).
    runs_per_subject, task, age_range
        Description: recording i is run ``i % runs_per_subject + 1`` of subject
        ``i // runs_per_subject + 1``; ages are drawn per subject in ``age_range`` (years).

    Each recording's description holds ``subject``, ``session``, ``task``, ``run`` (BIDS-style
    strings), ``age`` and ``sex``. Nothing is generated until samples are read.
    """
    if not isinstance(n_recordings, (int, np.integer)) or n_recordings < 0:
        raise OptionError(f"n_recordings must be a non-negative integer, got {n_recordings!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise OptionError(f"seed must be a non-negative integer, got {seed!r}")
    if not 8 <= int(adc_bits) <= 32:
        raise OptionError(f"adc_bits must be in 8..32, got {adc_bits!r}")
    if resolution_uv is None:
        resolution_uv = 0.5 if adc_bits <= 16 else 1 / 32
    if not resolution_uv > 0:
        raise OptionError(f"resolution_uv must be > 0 µV, got {resolution_uv!r}")
    if runs_per_subject < 1:
        raise OptionError(f"runs_per_subject must be >= 1, got {runs_per_subject!r}")
    n = int(n_recordings)
    chans = _per_recording(n_channels if ch_names is None else len(ch_names), n, "n_channels")
    rates = _per_recording(sfreq, n, "sfreq")
    durations = _per_recording(duration_s, n, "duration_s")
    recordings = []
    for i in range(n):
        n_ch, fs, dur = int(chans[i]), float(rates[i]), float(durations[i])
        if n_ch < 1 or not fs > 0 or not dur > 0:
            raise OptionError(f"recording {i}: need n_channels >= 1, sfreq > 0 Hz and duration_s > 0 s, "
                              f"got {n_ch}, {fs}, {dur}")
        names = tuple(ch_names) if ch_names is not None else tuple(channel_names(n_ch))
        subject, run = i // runs_per_subject, i % runs_per_subject
        params = SyntheticParams(
            seed=int(seed), index=i, subject=subject, n_channels=n_ch, sfreq=fs, n_times=max(1, round(dur * fs)),
            ch_names=names, adc_bits=int(adc_bits), resolution_uv=float(resolution_uv),
            line_freq=None if not line_freq else float(line_freq), line_uv=float(line_uv),
            background_uv=float(background_uv), alpha_uv=float(alpha_uv), mu_uv=float(mu_uv), noise_uv=float(noise_uv),
            alpha=bool(alpha), events=bool(events), artifacts=bool(artifacts))
        traits = _subject_traits(int(seed), subject)
        description = {"subject": f"{subject + 1:03d}", "session": "01", "task": task, "run": f"{run + 1:02d}",
                       "age": _age(traits, age_range), "sex": traits["sex"]}
        onsets, durs, labels = _event_table(params)
        settings = asdict(params)
        settings["ch_names"] = list(names)
        name = f"sub-{description['subject']}_ses-01_task-{task}_run-{description['run']}"
        recordings.append(Recording(
            SyntheticSource(params), fs, names, meas_date=None, annotations=Annotations(onsets, durs, labels),
            description=description,
            provenance={"generator": "eegbench.sources.synthetic", "generator_version": GENERATOR_VERSION,
                        "params": settings},
            name=name))
    attrs = {"source": "synthetic", "generator_version": GENERATOR_VERSION, "seed": int(seed),
             "event_meaning": dict(EVENT_MEANING)}
    return Dataset(recordings, attrs=attrs)


#: Benchmark profiles: keyword arguments of :func:`make_dataset`.
PROFILES: dict[str, dict[str, Any]] = {
    # a few seconds of everything, for tests and smoke runs
    "smoke": dict(n_recordings=3, n_channels=8, sfreq=128.0, duration_s=20.0),
    # Healthy Brain Network-like: 129-channel EGI net, 500 Hz, 5-minute recordings, 60 Hz mains, children
    "standard": dict(n_recordings=20, n_channels=129, sfreq=500.0, duration_s=300.0, adc_bits=16,
                     resolution_uv=0.5, background_uv=30.0, alpha_uv=12.0, line_freq=60.0, age_range=(5, 21)),
    # PhysioNet EEG Motor Movement/Imagery (EEGBCI)-like: 1 subject x 12 runs, 64 ch, 160 Hz, 125 s,
    # 1 µV steps, amplitudes matched to the real S001 files (median spectrum within ~1.5x, 0.5-79 Hz)
    "eegbci-like": dict(n_recordings=12, n_channels=64, sfreq=160.0, duration_s=125.0, resolution_uv=1.0,
                        background_uv=50.0, alpha_uv=10.0, mu_uv=8.0, noise_uv=3.0, line_freq=60.0, line_uv=2.0,
                        runs_per_subject=12, task="motorimagery"),
    # mixed sampling rates and montages, for code paths that must handle heterogeneous datasets
    "heterogeneous": dict(n_recordings=6, n_channels=[19, 32, 64, 129, 19, 64],
                          sfreq=[128.0, 250.0, 500.0, 500.0, 256.0, 160.0], duration_s=[30, 60, 45, 20, 60, 125]),
}


def make_profile(name: str, seed: int = 0, **overrides: Any) -> Dataset:
    """The synthetic dataset of a benchmark profile (see :data:`PROFILES`), e.g.
    ``make_profile("standard")``; ``overrides`` replace profile arguments."""
    if name not in PROFILES:
        raise OptionError(f"unknown synthetic profile {name!r}; choose one of: {', '.join(PROFILES)}")
    kwargs = {**PROFILES[name], **overrides}
    ds = make_dataset(seed=seed, **kwargs)
    ds.attrs["profile"] = name
    return ds
