"""The datamodules make the notes' data, split it correctly and batch it reproducibly."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from datamodules import CirclesDataModule, LinearDataModule
from datamodules.batches import EpochBatchSampler
from lightning_modules import ClassificationModule
from lightning_modules.models import CircleModelV2
from tests.test_modules import quick_trainer


def setup(dm: LinearDataModule | CirclesDataModule) -> LinearDataModule | CirclesDataModule:
    dm.setup("fit")
    return dm


def test_linear_data_is_the_notes_line_split_80_20_in_order() -> None:
    dm = setup(LinearDataModule())
    X_train, y_train = dm.train_set.features, dm.train_set.targets
    X_test, y_test = dm.test_set.features, dm.test_set.targets
    assert X_train.shape == y_train.shape == (40, 1)
    assert X_test.shape == y_test.shape == (10, 1)
    X = torch.arange(0, 1, 0.02).unsqueeze(dim=1)
    assert torch.equal(torch.cat([X_train, X_test]), X)
    # Each X keeps its own y (the notes' first split paired X[:n] with y[n:]).
    assert torch.equal(y_train, 0.7 * X_train + 0.3)
    assert torch.equal(y_test, 0.7 * X_test + 0.3)


def test_linear_exercise_parameters_change_the_line() -> None:
    dm = setup(LinearDataModule(weight=0.3, bias=0.9, step=0.01))
    assert len(dm.train_set) == 80 and len(dm.test_set) == 20
    assert torch.allclose(dm.test_set.targets, 0.3 * dm.test_set.features + 0.9)


def test_circles_shapes_dtypes_and_labels() -> None:
    dm = setup(CirclesDataModule())
    assert dm.train_set.features.shape == (800, 2)
    assert dm.test_set.features.shape == (200, 2)
    assert dm.train_set.features.dtype == dm.train_set.targets.dtype == torch.float32
    assert set(dm.train_set.targets.unique().tolist()) == {0.0, 1.0}


def test_circles_depend_only_on_their_own_arguments() -> None:
    torch.manual_seed(0)
    a = setup(CirclesDataModule())
    torch.manual_seed(1)
    b = setup(CirclesDataModule())
    c = setup(CirclesDataModule(random_state=7))
    assert torch.equal(a.train_set.features, b.train_set.features)
    assert torch.equal(a.test_set.targets, b.test_set.targets)
    assert not torch.equal(a.train_set.features, c.train_set.features)


@pytest.mark.parametrize("val_size", [0.0, 0.1])
def test_circles_splits_are_sklearns_train_test_split_of_X_and_y(val_size: float) -> None:
    """The course's ``train_test_split(X, y, test_size=0.2, random_state=42)``; the
    validation points are the same call's cut of the training part."""
    from sklearn.model_selection import train_test_split

    dm = CirclesDataModule(val_size=val_size)
    dm.setup("fit")
    X, y = (torch.from_numpy(a).type(torch.float) for a in dm.generate())
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    assert torch.equal(dm.test_set.features, X_test)
    assert torch.equal(dm.test_set.targets, y_test)
    if val_size:
        X_train, X_val, y_train, y_val = train_test_split(
            X_train, y_train, test_size=100, random_state=42
        )
        assert torch.equal(dm.val_set.features, X_val)
        assert torch.equal(dm.val_set.targets, y_val)
    assert torch.equal(dm.train_set.features, X_train)
    assert torch.equal(dm.train_set.targets, y_train)


def test_linear_validation_points_are_the_last_before_the_test_points() -> None:
    course, three_way = setup(LinearDataModule()), setup(LinearDataModule(val_size=0.1))
    parts = [three_way.train_set, three_way.val_set, three_way.test_set]
    assert [len(p) for p in parts] == [35, 5, 10]
    assert torch.equal(torch.cat([p.features for p in parts]), torch.arange(0, 1, 0.02)[:, None])
    assert torch.equal(three_way.test_set.features, course.test_set.features)
    assert torch.equal(three_way.val_set.targets, 0.7 * three_way.val_set.features + 0.3)


def rows(features: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(row) for row in features.tolist()}


def test_circles_validation_split_is_apart_from_train_and_test() -> None:
    course, three_way = setup(CirclesDataModule()), setup(CirclesDataModule(val_size=0.2))
    train, val, test = three_way.train_set, three_way.val_set, three_way.test_set
    assert (len(train), len(val), len(test)) == (600, 200, 200)
    # The test split is the course's, whatever val_size takes from the training points.
    assert torch.equal(test.features, course.test_set.features)
    assert torch.equal(test.targets, course.test_set.targets)
    assert rows(train.features) | rows(val.features) == rows(course.train_set.features)
    assert not rows(train.features) & rows(val.features)
    assert not three_way.validates_on_test and course.validates_on_test


def test_validation_uses_the_validation_split_and_test_and_predict_the_test_split() -> None:
    dm = setup(CirclesDataModule(val_size=0.2))
    assert torch.equal(next(iter(dm.val_dataloader()))[0], dm.val_set.features)
    assert torch.equal(next(iter(dm.test_dataloader()))[0], dm.test_set.features)
    assert torch.equal(next(iter(dm.predict_dataloader()))[0], dm.test_set.features)


class IndexWriter(BasePredictionWriter):
    """A user's prediction writer: what it is given for each batch."""

    def __init__(self) -> None:
        super().__init__(write_interval="batch")
        self.batches: list[tuple[list[int], Any]] = []

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        self.batches.append((list(batch_indices or []), prediction))


def test_a_prediction_writer_gets_the_test_split_positions_of_every_batch(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    dm = CirclesDataModule(n_samples=100, batch_size=8)
    writer = IndexWriter()
    trainer = quick_trainer(tmp_path, callbacks=[writer])
    trainer.predict(ClassificationModule(CircleModelV2()), datamodule=dm)
    positions = [i for indices, _ in writer.batches for i in indices]
    assert positions == list(range(len(dm.test_set)))
    for indices, prediction in writer.batches:
        assert torch.equal(prediction["features"], dm.test_set.features[indices])
        assert torch.equal(prediction["target"], dm.test_set.targets[indices])
    assert not [w for w in recwarn if "batch indices" in str(w.message)]


def test_the_course_split_validates_on_the_test_split() -> None:
    dm = setup(LinearDataModule())
    assert dm.val_set is dm.test_set
    assert torch.equal(next(iter(dm.val_dataloader()))[0], dm.test_set.features)


def test_full_batch_is_one_batch_of_every_training_sample() -> None:
    dm = setup(LinearDataModule())
    batches = list(dm.train_dataloader())
    assert len(batches) == 1
    features, targets = batches[0]
    assert torch.equal(features, dm.train_set.features)
    assert torch.equal(targets, dm.train_set.targets)


def test_mini_batches_are_tuples_covering_each_sample_once() -> None:
    dm = setup(CirclesDataModule(batch_size=64))
    batches = list(dm.train_dataloader())
    assert all(isinstance(batch, tuple) and len(batch) == 2 for batch in batches)
    assert [len(b[0]) for b in batches] == [64] * 12 + [32]
    seen = torch.cat([b[0] for b in batches])
    assert torch.equal(
        seen[seen[:, 0].argsort()], dm.train_set.features[dm.train_set.features[:, 0].argsort()]
    )


def test_shuffle_order_is_a_function_of_seed_and_epoch() -> None:
    def order(seed: int, epoch: int) -> list[torch.Tensor]:
        sampler = EpochBatchSampler(100, 32, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return [torch.as_tensor(index) for index in sampler]

    torch.manual_seed(123)
    first = order(42, 3)
    torch.manual_seed(456)
    assert all(torch.equal(a, b) for a, b in zip(first, order(42, 3), strict=True))
    assert not torch.equal(first[0], order(42, 4)[0])
    assert not torch.equal(first[0], order(43, 3)[0])


def test_a_fit_shuffles_every_epoch_in_the_order_of_its_seed_and_epoch(tmp_path: Path) -> None:
    """Lightning reaches the sampler through the datamodule's loader and sets its epoch."""
    first_batches: list[torch.Tensor] = []

    class FirstBatchOfEachEpoch(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
            if batch_idx == 0:
                first_batches.append(batch[0])

    dm = CirclesDataModule(batch_size=64, seed=5)
    trainer = quick_trainer(tmp_path, epochs=3, callbacks=[FirstBatchOfEachEpoch()])
    trainer.fit(ClassificationModule(CircleModelV2()), dm)
    for epoch, batch in enumerate(first_batches):
        sampler = EpochBatchSampler(len(dm.train_set), 64, shuffle=True, seed=5)
        sampler.set_epoch(epoch)
        assert torch.equal(batch, dm.train_set[next(iter(sampler))][0])
    assert len(first_batches) == 3 and not torch.equal(first_batches[0], first_batches[1])


def test_a_datamodule_prints_the_size_of_each_loaders_split() -> None:
    dm = CirclesDataModule(val_size=0.1)
    assert str(dm).splitlines() == [
        "{Train dataloader: None}",
        "{Validation dataloader: None}",
        "{Test dataloader: None}",
        "{Predict dataloader: None}",
    ]
    dm.setup("fit")
    assert str(dm).splitlines() == [
        "{Train dataloader: size=700}",
        "{Validation dataloader: size=100}",
        "{Test dataloader: size=200}",
        "{Predict dataloader: size=200}",
    ]


def test_a_loader_on_the_cpu_cuts_batches_from_the_split_itself() -> None:
    dm = setup(CirclesDataModule(batch_size=64))
    assert dm.train_dataloader().dataset is dm.train_set  # no copy where the data already are


@pytest.mark.parametrize(
    "num_samples, batch_size, replicas", [(800, None, 2), (801, None, 2), (100, 32, 3), (41, 40, 2)]
)
def test_ranks_share_every_batch_without_duplicates_or_drops(
    num_samples: int, batch_size: int | None, replicas: int
) -> None:
    shares = []
    for rank in range(replicas):
        sampler = EpochBatchSampler(
            num_samples, batch_size, shuffle=True, seed=1, rank=rank, num_replicas=replicas
        )
        shares.append([torch.arange(num_samples)[index] for index in sampler])
    for batch_parts in zip(*shares, strict=True):
        sizes = [len(part) for part in batch_parts]
        assert max(sizes) - min(sizes) <= 1
    everything = torch.cat([torch.cat(parts) for parts in shares])
    assert torch.equal(everything.sort().values, torch.arange(num_samples))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LinearDataModule(step=0), "step must be positive"),
        (lambda: LinearDataModule(start=1, end=1), "start must be below end"),
        (lambda: LinearDataModule(train_fraction=1.0), "train_fraction must lie in (0, 1)"),
        (lambda: LinearDataModule(train_fraction=0.01), "leaves a split empty"),
        (
            lambda: LinearDataModule(val_size=0.01),
            "train_fraction=0.8 and val_size=0.01 of 50 points leaves a split empty"
            " (40 train, 0 val, 10 test)",
        ),
        (lambda: LinearDataModule(val_size=0.8), "(0 train, 40 val, 10 test)"),
        (lambda: CirclesDataModule(val_size=1.0), "val_size must lie in [0, 1), got 1.0"),
        (lambda: LinearDataModule(batch_size=0), "batch_size must be a positive integer"),
        (lambda: CirclesDataModule(n_samples=0), "n_samples must be positive"),
        (lambda: CirclesDataModule(noise=-0.1), "noise must be zero or more"),
        (lambda: CirclesDataModule(test_size=0), "test_size must lie in (0, 1)"),
    ],
)
def test_bad_values_are_refused_with_the_reason(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=re.escape(message)):
        make()
