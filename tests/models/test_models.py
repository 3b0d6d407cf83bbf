"""Every registered model builds, runs at awkward sizes, and learns."""

import pytest
import torch

from streamseg.classes import NUM_CLASSES
from streamseg.models import MODELS, load_model
from streamseg.training.trainer import TrainConfig, Trainer


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("height, width", [(64, 64), (75, 100), (90, 123), (360, 480)])
def test_forward_keeps_the_input_size(name, height, width):
    torch.manual_seed(0)
    model = MODELS.get(name).build().eval()
    with torch.no_grad():
        logits = model(torch.rand(2, 3, height, width))
    assert logits.shape == (2, NUM_CLASSES, height, width)
    assert torch.isfinite(logits).all()


def test_unknown_model_is_a_clear_error():
    from streamseg.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown model 'nope'; known: erfnet"):
        MODELS.get("nope")


def test_weights_that_do_not_fit_are_refused(tmp_path):
    from streamseg.errors import InputError

    path = tmp_path / "w.pt"
    torch.save(MODELS.get("erfnet-half").build().state_dict(), path)
    with pytest.raises(InputError, match="do not fit"):
        load_model("erfnet", path, warn=False)


def test_a_pickled_object_is_not_loaded(tmp_path):
    from streamseg.errors import InputError

    path = tmp_path / "evil.pt"
    torch.save({"model": object()}, path)  # needs full unpickling, which weights_only refuses
    with pytest.raises(InputError, match="cannot load weights"):
        load_model("erfnet", path, warn=False)


def test_an_erfnet_encoder_starts_the_deeplab_erfnet_backbone(tmp_path):
    from streamseg.models.weights import load_encoder_state

    torch.manual_seed(0)
    donor = MODELS.get("erfnet").build().eval()
    path = tmp_path / "erfnet.pt"
    torch.save(donor.state_dict(), path)
    model = MODELS.get("deeplab").build().eval()
    head_before = model.aspp.project[0][0].weight.clone()

    assert load_encoder_state(model, path) == len([k for k in donor.state_dict() if k.startswith("encoder.")])
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        _, high_level = model.encoder.features(model.normalize(image))
        torch.testing.assert_close(high_level, donor.encoder(donor.normalize(image)))
    assert torch.equal(model.aspp.project[0][0].weight, head_before)  # the head keeps its initialisation


@pytest.mark.parametrize("model_name, donor_name", [("deeplab-resnet", "erfnet"), ("deeplab", "erfnet-half")])
def test_an_encoder_that_does_not_fit_is_refused(model_name, donor_name, tmp_path):
    from streamseg.errors import InputError
    from streamseg.models.weights import load_encoder_state

    path = tmp_path / "donor.pt"
    torch.save(MODELS.get(donor_name).build().state_dict(), path)
    with pytest.raises(InputError, match="do not fit this model's encoder"):
        load_encoder_state(MODELS.get(model_name).build(), path)


@pytest.mark.slow
def test_short_training_on_camvid_lowers_the_loss(camvid, tmp_path):
    config = TrainConfig(
        model="erfnet-half", data=camvid, out=tmp_path, epochs=1, batch_size=4, crop=(96, 96),
        learning_rate=5e-3, max_batches=1, train_split="val",
    )
    trainer = Trainer(config)
    # One fixed batch of 96x96 corners, seen repeatedly without augmentation.
    trainer.images = [image[:96, :96] for image in trainer.images[:4]]
    trainer.labels = [labels[:96, :96] for labels in trainer.labels[:4]]
    trainer.augmentation = None
    trainer.batches_per_epoch = 1
    losses = [trainer.train_epoch() for _ in range(15)]
    assert losses[-1] < losses[0] * 0.9


@pytest.mark.slow
def test_training_stops_on_a_non_finite_loss_before_saving(camvid, tmp_path):
    config = TrainConfig(model="erfnet-half", data=camvid, out=tmp_path, epochs=1, batch_size=2, crop=(64, 64),
                         learning_rate=1e30, max_batches=3, train_split="val")
    trainer = Trainer(config)
    with torch.no_grad():
        trainer.model.decoder[-1].bias.fill_(float("nan"))  # the same state a diverged step leaves
    with pytest.raises(FloatingPointError, match="lower --lr"):
        trainer.run()
    assert not (tmp_path / "last.pt").exists()


def test_a_frozen_encoder_keeps_its_weights_and_statistics_while_the_head_learns(camvid, tmp_path):
    config = TrainConfig(model="deeplab", data=camvid, out=tmp_path, epochs=2, batch_size=2, crop=(64, 64),
                         max_batches=2, train_split="val", freeze_encoder_epochs=1)
    trainer = Trainer(config)
    encoder_before = {k: v.clone() for k, v in trainer.model.encoder.state_dict().items()}
    head_before = trainer.model.decoder.classifier.weight.clone()

    trainer.train_epoch()
    trainer.epoch += 1
    for name, tensor in trainer.model.encoder.state_dict().items():
        assert torch.equal(tensor, encoder_before[name]), name
    assert not torch.equal(trainer.model.decoder.classifier.weight, head_before)

    trainer.train_epoch()  # the second epoch trains the encoder too
    changed = [k for k, v in trainer.model.encoder.state_dict().items() if not torch.equal(v, encoder_before[k])]
    assert changed and all(parameter.requires_grad for parameter in trainer.model.encoder.parameters())
