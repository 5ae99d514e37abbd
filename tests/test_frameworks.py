"""SyntheticMix on the datasets the frameworks' own scripts build, on real PBC images written out
as PNG class folders: timm's train.py (create_dataset, create_loader with and without the
prefetcher), MONAI's MedNIST tutorial (a custom Dataset whose Compose is called `transforms` and
starts with LoadImage) and monai_101 (monai.data.Dataset of dicts of file paths, LoadImaged first),
MONAI's ImageDataset and torchvision's ImageFolder. Synthetic items must reach the batches with the
right labels, through the same transforms, in the orientation of the real images."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from conftest import SHARED
from conftest_mix import FakeConditional
from PIL import Image

import gan_augment as ga

timm_data = pytest.importorskip("timm.data")
monai = pytest.importorskip("monai")
from monai.data import CacheDataset, DataLoader, Dataset, PersistentDataset  # noqa: E402
from monai.data import ImageDataset as MonaiImageDataset  # noqa: E402
from monai.transforms import (  # noqa: E402
    Compose,
    EnsureChannelFirst,
    EnsureChannelFirstd,
    LoadImage,
    LoadImaged,
    RandFlip,
    RandFlipd,
    ScaleIntensity,
    ScaleIntensityd,
)

PBC = ["basophil", "eosinophil", "erythroblast", "immature_granulocyte", "lymphocyte", "monocyte",
       "neutrophil", "platelet"]
COUNTS = {"basophil": 2, "eosinophil": 6, "neutrophil": 6}  # basophil is the minority


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """root/train/<class>/<n>.png from the real PBC train split, few images per class."""
    path = SHARED / "pbc_bloodcell_64.npz"
    if not path.exists():
        pytest.skip("../shared/data is not present")
    root = tmp_path_factory.mktemp("pbc_png")
    with np.load(path) as z:
        train = z["split"] == "train"
        images, labels = z["images"][train], z["labels"][train]
    for name, n in COUNTS.items():
        (root / "train" / name).mkdir(parents=True)
        for j, i in enumerate(np.flatnonzero(labels == PBC.index(name))[:n]):
            Image.fromarray(images[i]).save(root / "train" / name / f"{j:03d}.png")
    return root


def files_and_labels(root):
    """As the MedNIST tutorial lists them: sorted class folders, label = folder index."""
    class_names = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    files, labels = [], []
    for i, name in enumerate(class_names):
        for f in sorted((root / "train" / name).iterdir()):
            files.append(str(f))
            labels.append(i)
    return class_names, files, labels


def fake():
    return FakeConditional(image_size=64, class_names=PBC)


class ReturnsPicture(FakeConditional):
    """A "generator" whose every image is one real picture: what comes out of a pipeline must then
    equal that picture's file loaded by the pipeline."""

    def __init__(self, picture: np.ndarray, **config):
        super().__init__(**config)
        self.picture = torch.from_numpy(picture.copy()).permute(2, 0, 1).float() / 255.0

    @torch.no_grad()
    def sample(self, n, labels=None, generator=None):
        self.resolve_labels(n, labels, generator)
        return self.picture.expand(n, -1, -1, -1).clone()


def picture_mix(files, labels, make_base, **kw):
    """(SyntheticMix whose generator returns basophil file 0's picture, that file)."""
    path = files[labels.index(0)]
    picture = np.asarray(Image.open(path).convert("RGB"))
    assert not np.array_equal(picture, picture.transpose(1, 0, 2))  # a real, asymmetric picture
    aug = ReturnsPicture(picture, image_size=64, class_names=PBC)
    return ga.SyntheticMix(make_base(), aug, strategy="minority", ratio=0.5, **kw), path


def epoch_labels(loader, label_of=lambda b: b[1]):
    return Counter(int(v) for batch in loader for v in label_of(batch))


# ---- timm's train.py ------------------------------------------------------------------------

def timm_train_set(root):
    """As timm's train.py builds it: create_dataset with the folder reader, no transform yet."""
    return timm_data.create_dataset("", root=str(root), split="train", is_training=True,
                                    batch_size=4, input_img_mode="RGB")


@pytest.mark.parametrize("prefetcher", [False, True])
def test_timm_create_dataset_and_create_loader(folders, prefetcher):
    dataset_train = timm_train_set(folders)
    assert type(dataset_train).__name__ == "ImageDataset"
    dataset_train = ga.SyntheticMix(dataset_train, fake(), strategy="minority", ratio=0.5)  # the one line
    assert dataset_train.plan.real == {"basophil": 2, "eosinophil": 6, "neutrophil": 6}
    assert dataset_train.plan.synthetic == {"basophil": 2, "eosinophil": 0, "neutrophil": 0}
    loader = timm_data.create_loader(dataset_train, input_size=(3, 64, 64), batch_size=4, is_training=True,
                                     use_prefetcher=prefetcher, device=torch.device("cpu"), num_workers=0)
    assert loader.dataset is dataset_train and dataset_train.transform is not None  # set by create_loader
    real, synth = dataset_train[0], dataset_train[len(dataset_train) - 1]
    assert type(synth[0]) is type(real[0]) and synth[0].shape == real[0].shape == (3, 64, 64)
    assert synth[0].dtype == real[0].dtype  # uint8 arrays for the prefetcher, normalised floats without
    assert synth[1] == 0 and type(synth[1]) is type(real[1])
    assert epoch_labels(loader) == {0: 4, 1: 6, 2: 6}  # the 2 synthetic basophils are in the batches


def test_timm_labels_and_names_come_from_the_reader_without_decoding(folders, monkeypatch):
    ds = timm_train_set(folders)
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("an image was decoded"))
    mix = ga.SyntheticMix(ds, fake(), strategy="minority", ratio=0.5)
    assert mix.class_names_ == ["basophil", "eosinophil", "neutrophil"]
    assert mix.targets[-2:] == [0, 0]


def test_timm_iterable_dataset_gets_a_clear_error():
    class Stream:
        def __iter__(self):
            return iter([])

    ds = timm_data.IterableImageDataset("", reader=Stream())
    with pytest.raises(ga.DataError, match="iterable .streaming. dataset: SyntheticMix needs a map-style"):
        ga.SyntheticMix(ds, fake())


def test_torchvision_image_folder(folders):
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import ToTensor

    mix = ga.SyntheticMix(ImageFolder(str(folders / "train"), transform=ToTensor()), fake(), strategy="minority")
    assert mix.plan.synthetic["basophil"] == 2
    img, label = mix[len(mix) - 1]
    assert label == 0 and img.shape == (3, 64, 64) and img.dtype == torch.float32


# ---- MONAI's MedNIST tutorial: a custom Dataset with image_files, labels and `transforms` -------

class MedNISTStyle(torch.utils.data.Dataset):
    def __init__(self, image_files, labels, transforms):
        self.image_files = image_files
        self.labels = labels
        self.transforms = transforms

    def __len__(self):
        return len(self.image_files)

    def __getitem__(self, index):
        return self.transforms(self.image_files[index]), self.labels[index]


def test_mednist_tutorial_dataset_needs_class_names_and_says_how(folders):
    class_names, files, labels = files_and_labels(folders)
    train_ds = MedNISTStyle(files, labels, Compose([LoadImage(image_only=True), EnsureChannelFirst()]))
    with pytest.raises(ga.ConfigError) as err:
        ga.SyntheticMix(train_ds, fake(), strategy="minority", ratio=0.5)
    assert "add class_names=['<name of 0>', '<name of 1>', '<name of 2>'] to SyntheticMix(...)" in str(err.value)
    mix = ga.SyntheticMix(train_ds, fake(), strategy="minority", ratio=0.5, class_names=class_names)
    assert mix.plan.synthetic == {"basophil": 2, "eosinophil": 0, "neutrophil": 0}


def test_mednist_tutorial_pipeline_orientation_and_random_transforms(folders):
    class_names, files, labels = files_and_labels(folders)
    steps = [LoadImage(image_only=True), EnsureChannelFirst(), ScaleIntensity()]
    for flip in (False, True):  # a random step (here always firing) must reach synthetic items too
        tf = Compose(steps + ([RandFlip(spatial_axis=0, prob=1.0)] if flip else []))
        mix, path = picture_mix(files, labels, lambda tf=tf: MedNISTStyle(files, labels, tf), class_names=class_names)
        img, label = mix[len(mix) - 1]
        assert label == 0
        assert torch.equal(torch.as_tensor(img), torch.as_tensor(tf(path)))  # as the real file, loaded
    unflipped = Compose(steps)(path)
    assert not torch.equal(torch.as_tensor(img), torch.as_tensor(unflipped))


def test_mednist_tutorial_batches(folders):
    class_names, files, labels = files_and_labels(folders)
    train_transforms = Compose([LoadImage(image_only=True), EnsureChannelFirst(), ScaleIntensity(),
                                RandFlip(spatial_axis=0, prob=0.5)])
    train_ds = MedNISTStyle(files, labels, train_transforms)
    train_ds = ga.SyntheticMix(train_ds, fake(), strategy="minority", ratio=0.5, class_names=class_names)
    loader = DataLoader(train_ds, batch_size=4, shuffle=True, num_workers=0)
    batch = next(iter(loader))
    assert batch[0].shape == (4, 3, 64, 64) and batch[0].dtype == torch.float32
    assert epoch_labels(loader) == {0: 4, 1: 6, 2: 6}


# ---- MONAI's monai_101: monai.data.Dataset of dicts whose "image" is a PNG path -------------------

def dict_data(root):
    class_names, files, labels = files_and_labels(root)
    return [{"image": f, "label": y, "class_name": class_names[y]} for f, y in zip(files, labels)]


def test_monai_101_dataset_of_file_dicts(folders):
    transform = Compose([LoadImaged(keys="image", image_only=True), EnsureChannelFirstd(keys="image"),
                         ScaleIntensityd(keys="image"), RandFlipd(keys="image", prob=0.5)])
    dataset = Dataset(dict_data(folders), transform=transform)
    dataset = ga.SyntheticMix(dataset, fake(), strategy="minority", ratio=0.5)  # names from "class_name"
    assert dataset.plan.synthetic == {"basophil": 2, "eosinophil": 0, "neutrophil": 0}
    synth = dataset[len(dataset) - 1]
    assert synth["class_name"] == "basophil" and synth["label"] == 0 and synth["image"].shape == (3, 64, 64)
    loader = DataLoader(dataset, batch_size=4, shuffle=True, num_workers=0)
    counts = Counter()
    for batch in loader:
        counts.update(zip(batch["label"].tolist(), batch["class_name"]))
    assert counts == {(0, "basophil"): 4, (1, "eosinophil"): 6, (2, "neutrophil"): 6}


@pytest.mark.parametrize("kind", ["Dataset", "CacheDataset", "PersistentDataset"])
def test_monai_dict_pipeline_orientation(folders, kind, tmp_path):
    data = dict_data(folders)
    transform = Compose([LoadImaged(keys="image", image_only=True), EnsureChannelFirstd(keys="image"),
                         ScaleIntensityd(keys="image")])
    files, labels = [d["image"] for d in data], [d["label"] for d in data]
    make = {"Dataset": lambda: Dataset(data, transform=transform),
            "CacheDataset": lambda: CacheDataset(data, transform=transform, progress=False),
            "PersistentDataset": lambda: PersistentDataset(data, transform=transform, cache_dir=tmp_path)}[kind]
    mix, path = picture_mix(files, labels, make)
    out = mix[len(mix) - 1]["image"]
    real = transform({"image": path})["image"]
    assert out.dtype == real.dtype and torch.equal(torch.as_tensor(out), torch.as_tensor(real))
    assert mix.synthetic_image(len(mix) - 1).shape == (3, 64, 64)


def test_generative_replaced_after_load_imaged_keeps_the_loader_orientation(folders):
    """A replacement after LoadImaged comes out as the picture's own file would: the transform
    finds the loader's row/column swap from the first image's file and applies it."""
    from gan_augment.monai import GenerativeReplaced

    data = dict_data(folders)
    path = next(d["image"] for d in data if d["label"] == 0)
    picture = np.asarray(Image.open(path).convert("RGB"))
    aug = ReturnsPicture(picture, image_size=64, class_names=PBC)
    load = Compose([LoadImaged(keys="image", image_only=True), EnsureChannelFirstd(keys="image")])
    replace = GenerativeReplaced(keys="image", augmenter=aug, prob=1.0, label_key="class_name",
                                 classes=["basophil"])
    other = next(d for d in data if d["label"] == 0 and d["image"] != path)
    out = replace(load(other))["image"]
    real = load({"image": path})["image"]
    assert torch.equal(torch.as_tensor(out).float(), torch.as_tensor(real).float())


def test_monai_image_dataset_orientation(folders):
    _, files, labels = files_and_labels(folders)
    transform = Compose([EnsureChannelFirst(), ScaleIntensity()])
    mix, path = picture_mix(files, labels, lambda: MonaiImageDataset(files, labels=labels, transform=transform),
                            class_names=["basophil", "eosinophil", "neutrophil"])
    img, label = mix[len(mix) - 1]
    assert label == 0
    assert torch.equal(torch.as_tensor(img), torch.as_tensor(transform(LoadImage(image_only=True)(path))))


def test_a_transform_that_is_only_a_loader(folders):
    _, files, labels = files_and_labels(folders)
    mix, path = picture_mix(files, labels, lambda: MedNISTStyle(files, labels, LoadImage(image_only=True)),
                            class_names=["basophil", "eosinophil", "neutrophil"])
    img, _ = mix[len(mix) - 1]
    assert torch.equal(torch.as_tensor(img), torch.as_tensor(LoadImage(image_only=True)(path)))
