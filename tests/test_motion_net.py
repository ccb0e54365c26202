"""MotionNet: the doubled-angle representation, both heads, decoding, training samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unblur import blur, motion
from unblur.models.motion_net import MotionNet, doubled_to_vector, vector_to_doubled
from unblur.train.motion import _augment, motion_loss
from unblur.train.motion_data import MotionMix, doubled_quarter, synth_motion_sample


def field_tensor(field: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(field.transpose(2, 0, 1)))[None].float()


def test_doubled_angle_round_trip_and_sign() -> None:
    field = blur.random_field(20, 30, rng=0, max_length=25).field
    t = field_tensor(field)
    doubled = vector_to_doubled(t)
    assert torch.allclose(doubled, vector_to_doubled(-t), atol=1e-5)  # v and -v: one blur
    back = doubled_to_vector(doubled)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(back, motion.canonical(field), atol=1e-3)
    # |m| is the length, and 90 degrees apart is opposite in m
    np.testing.assert_allclose(
        torch.linalg.vector_norm(doubled, dim=1)[0].numpy(),
        np.hypot(field[..., 0], field[..., 1]),
        rtol=1e-5,
        atol=1e-5,
    )
    m0 = vector_to_doubled(field_tensor(blur.constant_field(1, 1, 5, 0)))
    m90 = vector_to_doubled(field_tensor(blur.constant_field(1, 1, 5, 90)))
    assert torch.allclose(m0, -m90, atol=1e-5)


def test_doubled_quarter_matches_constant_field() -> None:
    field = blur.constant_field(16, 16, 10.0, 30.0)
    q = doubled_quarter(field)
    assert q.shape == (2, 4, 4)
    np.testing.assert_allclose(q[0], 10 * math.cos(math.radians(60)), atol=1e-4)
    np.testing.assert_allclose(q[1], 10 * math.sin(math.radians(60)), atol=1e-4)
    with pytest.raises(ValueError, match="divisible by 4"):
        doubled_quarter(np.zeros((10, 12, 2), np.float32))


@pytest.mark.parametrize("head", ["regress", "classify"])
@pytest.mark.parametrize("in_frames", [1, 3])
def test_shapes_gradients_and_field(head: str, in_frames: int) -> None:
    torch.manual_seed(0)
    net = MotionNet(in_frames=in_frames, width=8, head=head, length_bins=4, angle_bins=6)
    x = torch.rand(2, 3 * in_frames, 40, 52)
    raw = net(x)
    channels = 4 if head == "regress" else 1 + 4 * 6
    assert raw.shape == (2, channels, 12, 16)  # padded to 48 x 64, then / 4
    target = torch.randn(2, 2, 12, 16) * 5
    loss = motion_loss(net, raw, target)
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in net.named_parameters():
        assert p.grad is not None, name
    with torch.no_grad():
        field, conf = net.field(x)
    assert field.shape == (2, 2, 40, 52) and conf.shape == (2, 1, 40, 52)
    assert torch.isfinite(field).all() and (conf >= 0).all() and (conf <= 1).all()
    assert (field[:, 0] >= -1e-5).all()  # canonical: dx >= 0
    with pytest.raises(ValueError, match=rf"\(B, {3 * in_frames}, H, W\)"):
        net(torch.rand(1, 4, 32, 32))


def test_soft_labels_are_distributions_that_decode_back() -> None:
    net = MotionNet(width=8, head="classify", max_length=40, length_bins=16, angle_bins=12)
    lengths = torch.tensor([0.0, 1.0, 7.3, 20.0, 39.0])
    angles = torch.tensor([0.0, 10.0, 95.0, 170.0, 44.0]) * math.pi / 180
    doubled = torch.stack(
        (lengths * torch.cos(2 * angles), lengths * torch.sin(2 * angles)), dim=0
    )[None, :, :, None]  # (1, 2, 5, 1)
    labels = net.soft_labels(doubled)
    assert torch.allclose(labels.sum(dim=1), torch.ones(1, 5, 1), atol=1e-6)
    assert (labels >= 0).all()
    # decoding the soft labels as probabilities gives back the vector (bilinear is exact in
    # length; the angle interpolates chords, so allow a little)
    est, length, _ = net.decode(torch.log(labels.clamp_min(1e-12)))
    np.testing.assert_allclose(length[0, 0, :, 0].numpy(), lengths.numpy(), atol=1e-3)
    vec_est = doubled_to_vector(est, length)[0, :, :, 0].T.numpy()
    vec_true = doubled_to_vector(doubled)[0, :, :, 0].T.numpy()
    err = motion.endpoint_error(vec_est, vec_true)
    assert err.max() < 0.6, err


def test_multiscale_length_weights_and_fallback() -> None:
    torch.manual_seed(0)
    net = MotionNet(width=8, head="classify", max_length=40, length_bins=16, angle_bins=12).eval()
    # a half-size image's marginal (bins 5 px apart in full-size pixels, up to 80 px) read at
    # the full-size bins' lengths (2.5 px apart, up to 40 px): linear interpolation
    weights = net._bin_weights(2.0)
    assert torch.allclose(weights.sum(dim=1), torch.ones(17))
    shrunk_lengths = torch.arange(17.0) * 5.0
    np.testing.assert_allclose((weights @ shrunk_lengths).numpy(), np.arange(17) * 2.5, atol=1e-4)
    # an image whose shrunk copy would be under MIN_FUSION_SIDE: the single-scale length
    x = torch.rand(1, 3, 160, 192)
    with torch.no_grad():
        raw = net(x)
        _, length, _ = net.decode(raw)
        assert torch.allclose(net.multiscale_length(x, raw, (0.5,)), length, atol=1e-5)
        fused = net.multiscale_length(x, raw, (0.7,))  # 112 x 134: used
    assert fused.shape == (1, 1, 40, 48) and torch.isfinite(fused).all()
    assert not torch.allclose(fused, length, atol=1e-3)
    assert ((fused >= 0) & (fused <= 40)).all()
    with pytest.raises(ValueError, match="scales"):
        net.multiscale_length(x, raw, (1.5,))
    with pytest.raises(ValueError, match="classify"):
        MotionNet(width=8, head="regress").length_marginal(torch.zeros(1, 4, 2, 2))


def test_augment_transforms_targets_with_the_image() -> None:
    """Flipping/transposing a sample's image must give the targets of the flipped field."""
    field = blur.random_field(32, 32, rng=3, max_length=20).field
    image = torch.rand(1, 3, 32, 32)
    targets = torch.from_numpy(doubled_quarter(field))[None]
    for seed in range(16):
        rng = np.random.default_rng(seed)
        flips = rng.integers(0, 2, 3)
        img_aug, tgt_aug = _augment(image, targets, np.random.default_rng(seed))
        f = field.copy()
        if flips[0]:
            f = f[:, ::-1] * np.array([-1, 1], np.float32)
        if flips[1]:
            f = f[::-1] * np.array([1, -1], np.float32)
        if flips[2]:
            f = f.transpose(1, 0, 2)[..., ::-1]
        expected = doubled_quarter(np.ascontiguousarray(f))
        np.testing.assert_allclose(tgt_aug[0].numpy(), expected, atol=1e-4)
        assert img_aug.shape == image.shape


@pytest.mark.parametrize("frames", [False, True])
def test_synthetic_sample(frames: bool) -> None:
    rng = np.random.default_rng(0)
    photo = (np.random.default_rng(1).random((200, 240, 3)) * 255).astype(np.uint8)
    mix = MotionMix(max_length=20, max_displacement=24)
    sample = synth_motion_sample(photo, 64, mix, rng, frames=frames, kind="linear")
    assert sample.frames.dtype == np.uint8
    assert sample.frames.shape == ((3 if frames else 1), 64, 64, 3)
    assert sample.field.shape == (64, 64, 2)
    length = np.hypot(sample.field[..., 0], sample.field[..., 1])
    assert np.ptp(length) < 1e-4 and 2 <= length[0, 0] <= 20  # uniform, within the range
    if frames:  # neighbours differ from the centre frame: the scene moved
        assert np.abs(sample.frames[0].astype(int) - sample.frames[1]).mean() > 1
    with pytest.raises(ValueError, match="unknown field kind"):
        synth_motion_sample(photo, 64, mix, rng, kind="spin")
    with pytest.raises(ValueError, match="does not fit"):
        synth_motion_sample(photo[:50], 64, mix, rng)


def test_field_frames_blur_is_duty_times_displacement() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((48, 48)).astype(np.float32)
    disp = blur.constant_field(48, 48, 8.0, 0.0)
    _prev, cur, nxt = blur.field_frames(image, disp, duty=0.5)
    np.testing.assert_allclose(cur, blur.field_blur(image, disp * 0.5), atol=1e-6)
    # the next frame is the current one moved by D (away from the borders)
    shifted = np.roll(cur, -8, axis=1)
    np.testing.assert_allclose(nxt[:, 12:-12], shifted[:, 12:-12], atol=1e-4)
    with pytest.raises(ValueError, match="duty"):
        blur.field_frames(image, disp, duty=0.0)
