import numpy as np
import pytest

from unmix.features import (
    feature_image,
    handcrafted_features,
    network_features,
    preprocess_features,
)


def test_none_gives_the_preprocessed_network_features(photo):
    image = photo("coffee", (30, 40))
    F = feature_image(None, image)
    np.testing.assert_array_equal(F, preprocess_features(network_features(image), image))
    assert F.shape == (30, 40, 3) and F.min() == 0 and F.max() == 1


def test_handcrafted_by_name(photo):
    image = photo("coffee", (30, 40))
    F = feature_image("handcrafted", image)
    np.testing.assert_array_equal(F, handcrafted_features(image))
    assert F.shape == (30, 40, 3) and F.min() == 0 and F.max() == 1


def test_three_channels_in_unit_range_are_used_as_is(photo):
    image = photo("coffee", (30, 40))
    features = np.ascontiguousarray(image[..., ::-1])
    np.testing.assert_array_equal(feature_image(features, image), features)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        feature_image(features * 2, image)


def test_raw_embeddings_are_preprocessed(photo):
    image = photo("coffee", (30, 40))
    raw = np.random.default_rng(0).normal(size=(30, 40, 7))
    np.testing.assert_array_equal(feature_image(raw, image), preprocess_features(raw, image))


def test_callable_extractor(photo):
    image = photo("coffee", (30, 40))
    calls = []

    def extractor(img):
        calls.append(img.shape)
        return np.concatenate([img, img ** 2], axis=2)  # 6 raw channels

    F = feature_image(extractor, image)
    assert calls == [(30, 40, 3)] and F.shape == (30, 40, 3)
    with pytest.raises(ValueError, match="output of the features callable"):
        feature_image(lambda img: img[:5], image)


def test_bad_features(photo):
    image = photo("coffee", (30, 40))
    with pytest.raises(ValueError, match="features must be None, 'handcrafted'"):
        feature_image("handmade", image)
    with pytest.raises(ValueError, match="2 channel"):
        feature_image(image[..., :2], image)
    with pytest.raises(ValueError, match="NaN"):
        feature_image(np.full((30, 40, 3), np.nan), image)


def test_handcrafted_features_are_deterministic_and_scale_aware(photo):
    small, large = photo("chelsea", (60, 80)), photo("chelsea", (120, 160))
    np.testing.assert_array_equal(handcrafted_features(small), handcrafted_features(small))
    # the pooling scales follow the image size: downsampled features agree with small-image ones
    coarse = handcrafted_features(large)[::2, ::2]
    fine = handcrafted_features(small)
    agreement = [abs(np.corrcoef(coarse[..., c].ravel(), fine[..., c].ravel())[0, 1]) for c in range(3)]
    assert min(agreement) > 0.8
