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
    from streamseg.errors import InputError

    with pytest.raises(InputError, match="unknown model 'nope'; known models: erfnet"):
        MODELS.get("nope")


def test_weights_that_do_not_fit_are_refused(tmp_path):
    from streamseg.errors import InputError

    path = tmp_path / "w.pt"
    torch.save(MODELS.get("erfnet-half").build().state_dict(), path)
    with pytest.raises(InputError, match="do not fit"):
        load_model("erfnet", path, warn=None)


def test_a_pickled_object_is_not_loaded(tmp_path):
    from streamseg.errors import InputError

    path = tmp_path / "evil.pt"
    torch.save({"model": object()}, path)  # needs full unpickling, which weights_only refuses
    with pytest.raises(InputError, match="cannot load weights"):
        load_model("erfnet", path, warn=None)


def test_short_training_on_camvid_lowers_the_loss(camvid, tmp_path):
    config = TrainConfig(
        model="erfnet-half", data=camvid, out=tmp_path, epochs=1, batch_size=4, crop=(96, 96),
        learning_rate=5e-3, max_batches=1, train_split="val",
    )
    trainer = Trainer(config)
    trainer.train_set.samples = trainer.train_set.samples[:4]  # one fixed batch, seen repeatedly
    trainer.train_set.images, trainer.train_set.labels = trainer.train_set.images[:4], trainer.train_set.labels[:4]
    trainer.train_set.augmentation = None
    trainer.batches_per_epoch = 1
    losses = [trainer.train_epoch() for _ in range(15)]
    assert losses[-1] < losses[0] * 0.9


def test_training_stops_on_a_non_finite_loss_before_saving(camvid, tmp_path):
    config = TrainConfig(model="erfnet-half", data=camvid, out=tmp_path, epochs=1, batch_size=2, crop=(64, 64),
                         learning_rate=1e30, max_batches=3, train_split="val")
    trainer = Trainer(config)
    with torch.no_grad():
        trainer.model.decoder[-1].bias.fill_(float("nan"))  # the same state a diverged step leaves
    with pytest.raises(FloatingPointError, match="lower --lr"):
        trainer.run()
    assert not (tmp_path / "last.pt").exists()
