"""DICOM and NIfTI files load like PNGs: same orientation, stated intensity rules, one grey channel.

Files are written here with pydicom and nibabel (tiny, in tmp_path); reading goes through MONAI."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import gan_augment as ga
from gan_augment.core import medical
from gan_augment.core.layout import resize_uint8

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid  # noqa: E402

try:
    from pydicom.pixels import apply_windowing
except ImportError:  # pydicom 2.x
    from pydicom.pixel_data_handlers.util import apply_windowing

H, W = 12, 20  # not square, so a transposed read changes the shape
IDENTITY = (128, 256)  # the DICOM linear window that maps 0..255 onto 0..255 exactly


def pattern() -> np.ndarray:
    """uint8 (H, W): a left-to-right ramp with a bright block near the top-left corner."""
    img = np.tile(np.linspace(10, 200, W).round().astype(np.uint8), (H, 1))
    img[1:3, 2:5] = 255
    img[H - 2, W - 3] = 0
    return img


def write_dicom(path, pixels: np.ndarray, *, slope=None, intercept=None, window=None,
                photometric="MONOCHROME2", bits_stored=16, signed=False, frames=None, rgb=False):
    """A minimal valid DICOM file (file meta, CT image storage, explicit VR little endian)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientID = "TEST"
    if rgb:
        ds.Rows, ds.Columns = pixels.shape[:2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit, ds.PixelRepresentation = 7, 0
        data = pixels.astype(np.uint8)
    else:
        ds.Rows, ds.Columns = pixels.shape[-2:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
        ds.PixelRepresentation = int(signed)
        data = pixels.astype(np.int16 if signed else np.uint16)
    if frames:
        ds.NumberOfFrames = frames
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = data.tobytes()
    major = int(pydicom.__version__.split(".")[0])
    kw = {"enforce_file_format": True} if major >= 3 else {"write_like_original": False}
    pydicom.dcmwrite(str(path), ds, **kw)
    return path


def write_nifti(path, image_hw: np.ndarray, dtype=np.uint16):
    """A 2D (or, given (H, W, Z), 3D) NIfTI stored as MONAI and ITK store images: voxel axis i
    runs along columns, j along rows."""
    data = np.swapaxes(image_hw, 0, 1).astype(dtype)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return path


def grey(arr: np.ndarray) -> np.ndarray:
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 1
    return arr[:, :, 0]


# orientation -------------------------------------------------------------------------------------

def test_dicom_and_nifti_come_back_as_the_png_of_the_same_pixels(tmp_path):
    img = pattern()
    Image.fromarray(img).save(tmp_path / "p.png")
    png = np.asarray(Image.open(tmp_path / "p.png"))
    dcm = grey(medical.read_medical(write_dicom(tmp_path / "p.dcm", img), window=IDENTITY))
    nii = grey(medical.read_medical(write_nifti(tmp_path / "p.nii.gz", img), window=IDENTITY))
    assert dcm.shape == nii.shape == (H, W)
    np.testing.assert_array_equal(dcm, png)
    np.testing.assert_array_equal(nii, png)
    assert dcm[1, 2] == 255 and dcm[H - 2, W - 3] == 0  # the marks where the PNG has them


@pytest.mark.filterwarnings("ignore:NvImgCodecPydicomReader")  # LoadImage builds every reader
def test_nifti_convention_is_monais_own_png_reading(tmp_path):
    """MONAI reads a PNG as (x, y); our NIfTI test files store exactly that array."""
    from monai.data import PILReader
    from monai.transforms import LoadImage

    img = pattern()
    Image.fromarray(img).save(tmp_path / "p.png")
    monai_png = LoadImage(reader=PILReader(), image_only=True)(str(tmp_path / "p.png")).numpy()
    stored = np.asanyarray(nib.load(str(write_nifti(tmp_path / "p.nii", img))).dataobj)
    np.testing.assert_array_equal(monai_png, stored)


# intensity ---------------------------------------------------------------------------------------

def test_dicom_rescale_then_file_window_matches_pydicom(tmp_path):
    stored = np.arange(H * W, dtype=np.uint16).reshape(H, W) * 9 + 400  # 400..2551
    stored[0, :4] = [0, 512, 532, 2000]
    path = write_dicom(tmp_path / "ct.dcm", stored, slope=2, intercept=-1024, window=(40, 400),
                       bits_stored=12)
    out = grey(medical.read_medical(path)).astype(int)
    hu = stored.astype(np.float64) * 2 - 1024  # the file's modality units
    # anchors by hand: DICOM linear window, center 40, width 400
    assert out[0, 0] == 0                      # -1024 HU, far below the window
    assert out[0, 1] == round((0 - 39.5) / 399 * 255 + 127.5)   # 0 HU -> 102
    assert out[0, 2] == 128                    # 40 HU, the centre
    assert out[0, 3] == 255                    # 2976 HU, above
    # every pixel against pydicom's own implementation (output range 12-bit, rescaled)
    ds = pydicom.dcmread(str(path))
    ref = apply_windowing(hu.copy(), ds)
    y_min, y_max = -1024, (2 ** 12 - 1) * 2 - 1024
    ref = (ref - y_min) / (y_max - y_min) * 255
    assert np.abs(out - ref).max() <= 0.5 + 1e-6
    assert 0 < (out > 0).sum() and (out < 255).sum() > 0


def test_user_window_overrides_the_files_window_for_dicom_and_nifti(tmp_path):
    hu = np.rint(np.linspace(-1000, 1000, H * W)).reshape(H, W)
    dcm = write_dicom(tmp_path / "ct.dcm", hu + 1024, slope=1, intercept=-1024, window=(40, 400))
    nii = write_nifti(tmp_path / "ct.nii.gz", hu, dtype=np.int16)
    lung = (-600, 1500)
    expected = medical.window_to_uint8(hu, *lung)
    np.testing.assert_array_equal(grey(medical.read_medical(dcm, window=lung)), expected)
    np.testing.assert_array_equal(grey(medical.read_medical(nii, window=lung)), expected)
    assert not np.array_equal(grey(medical.read_medical(dcm)), expected)  # the file's own window


def test_window_formula():
    x = np.array([-200.0, -160.0, -60.0, 39.5, 40.0, 140.0, 239.0, 240.0])
    y = medical.window_to_uint8(x, 40, 400)  # linear between 39.5 -/+ 199.5, slope 255 / 399
    assert y.tolist() == [0, 0, 64, 128, 128, 192, 255, 255]
    assert medical.window_to_uint8(np.array([9.0, 10.0, 11.0]), 10, 1).tolist() == [0, 255, 255]


def test_16bit_nifti_robust_minmax_ignores_a_hot_pixel(tmp_path):
    vals = np.empty(400, dtype=np.uint16)
    vals[:399] = 1000 + 10 * np.arange(399)  # 1000..4980
    vals[399] = 65535                         # one hot pixel: a plain min-max would crush the rest
    img = vals.reshape(20, 20)
    out = grey(medical.read_medical(write_nifti(tmp_path / "v.nii", img))).ravel().astype(int)
    lo, hi = 1000 + 10 * 1.995, 1000 + 10 * 397.005  # 0.5th/99.5th percentiles (linear interpolation)
    assert out[0] == 0 and out[399] == 255
    assert out[199] == round((2990 - lo) / (hi - lo) * 255)  # 127, not 8 as min-max would give
    assert out[398] == 255 and out[50] == round((1500 - lo) / (hi - lo) * 255) == 31
    assert np.all(np.diff(out[:399]) >= 0)


def test_16bit_dicom_full_range_window(tmp_path):
    img = np.array([[0, 256, 32768, 65535]] * 4, dtype=np.uint16)
    out = grey(medical.read_medical(write_dicom(tmp_path / "w.dcm", img, window=(32768, 65536))))
    assert out[0].tolist() == [0, 1, 128, 255]  # 256 does not wrap to 0 as a uint8 cast would


def test_dicom_without_window_uses_robust_minmax_and_monochrome1_is_inverted(tmp_path):
    img = np.arange(H * W, dtype=np.int16).reshape(H, W) - 100  # signed values
    m2 = grey(medical.read_medical(write_dicom(tmp_path / "m2.dcm", img, signed=True)))
    m1 = grey(medical.read_medical(write_dicom(tmp_path / "m1.dcm", img, signed=True,
                                               photometric="MONOCHROME1")))
    np.testing.assert_array_equal(m2, medical.robust_to_uint8(img))
    assert m2[0, 0] == 0 and m2[-1, -1] == 255
    np.testing.assert_array_equal(m1, 255 - m2)


def test_constant_image_is_black():
    assert medical.robust_to_uint8(np.full((4, 4), 7.0)).max() == 0


def test_rgb_dicom_kept_as_stored(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    out = medical.read_medical(write_dicom(tmp_path / "c.dcm", rgb, rgb=True))
    np.testing.assert_array_equal(out, rgb)


# volumes -----------------------------------------------------------------------------------------

def volume(n: int) -> np.ndarray:
    """(H, W, n): slice k is the pattern with a mark of value 10 * k + 5 at row 5, column k."""
    vol = np.repeat(pattern()[:, :, None], n, axis=2).astype(np.uint16)
    for k in range(n):
        vol[5, k, k] = 10 * k + 5
    return vol


@pytest.mark.parametrize("n, chosen, k", [(5, None, 2), (4, None, 2), (5, 0, 0), (5, -1, 4), (5, 3, 3)])
def test_nifti_volume_slice(tmp_path, n, chosen, k):
    path = write_nifti(tmp_path / "vol.nii.gz", volume(n))
    out = grey(medical.read_medical(path, window=IDENTITY, slice_index=chosen))
    np.testing.assert_array_equal(out, volume(n)[:, :, k])


def test_multiframe_dicom_slice(tmp_path):
    vol = volume(3)
    path = write_dicom(tmp_path / "mf.dcm", np.moveaxis(vol, 2, 0), frames=3)
    np.testing.assert_array_equal(grey(medical.read_medical(path, window=IDENTITY)), vol[:, :, 1])
    np.testing.assert_array_equal(grey(medical.read_medical(path, window=IDENTITY, slice_index=2)),
                                  vol[:, :, 2])


def test_slice_out_of_range_and_4d_are_clear_errors(tmp_path):
    path = write_nifti(tmp_path / "vol.nii", volume(3))
    with pytest.raises(ga.DataError, match="slice 3 is out of range.*3 slices"):
        medical.read_medical(path, slice_index=3)
    four = tmp_path / "t.nii"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3, 2), np.int16), np.eye(4)), str(four))
    with pytest.raises(ga.DataError, match="one volume per file"):
        medical.read_medical(four)


# datasets ----------------------------------------------------------------------------------------

@pytest.fixture
def scans(tmp_path):
    """Two classes of mixed files; returns (root, {relative path: expected (H, W) uint8})."""
    root = tmp_path / "scans"
    rng = np.random.default_rng(1)
    expected = {}
    for cls, n in (("cyst", 2), ("tumour", 3)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 256, (H, W)).astype(np.uint8)
            img[0, 0] = 255 if cls == "tumour" else 0
            kind = ("dcm", "nii", "nii.gz", "png", "")[(i + (cls == "tumour") * 2) % 5]
            name = f"{cls}/{i}.{kind}" if kind else f"{cls}/IM{i:04d}"
            path = root / name
            if kind in ("dcm", ""):
                write_dicom(path, img, window=IDENTITY)
            elif kind == "png":
                Image.fromarray(img).save(path)
            else:
                write_nifti(path, img)
                img = medical.window_to_uint8(img, 100, 151)  # read with window=(100, 151) below
            expected[name] = img
    return root, expected


def test_image_folder_of_dicom_nifti_and_png(scans):
    root, expected = scans
    ds = ga.load_dataset(root, channels=1, window=None)
    assert ds.class_names == ["cyst", "tumour"]
    assert ds.labels.tolist() == [0, 0, 1, 1, 1]
    assert len(ds._images) == 5 and any(p.endswith("IM0002") for p in ds._images)  # suffix-less DICOM
    x = ds.tensor()
    assert x.shape == (5, 1, H, W) and x.dtype == torch.uint8
    files = sorted(expected)
    for row, name in zip(x, files):
        if ".nii" not in name:  # NIfTI has no window of its own: robust min-max, tested above
            np.testing.assert_array_equal(row[0].numpy(), expected[name], err_msg=name)


def test_window_and_image_size_pass_through_folder_and_csv(scans, tmp_path):
    root, expected = scans
    files = sorted(expected)
    ds = ga.load_dataset(root, channels=1, window=(100, 151))
    nifti = [i for i, f in enumerate(files) if ".nii" in f]
    x = ds.tensor()
    for i in nifti:
        np.testing.assert_array_equal(x[i, 0].numpy(), expected[files[i]], err_msg=files[i])
    # the options survive class selection and the trainer's resized view
    sub = ga.load_dataset(root, channels=1, window=(100, 151), classes=["tumour"])
    assert sub.read_options["window"] == (100.0, 151.0) and len(sub) == 3
    small = ga.as_dataset(ds, image_size=8, channels=1).tensor()
    assert small.shape == (5, 1, 8, 8)
    np.testing.assert_array_equal(small, resize_uint8(x, 8))
    # a CSV of path,label reads the same files the same way
    table = tmp_path / "scans.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for name in files:
            w.writerow([f"scans/{name}", name.split("/")[0]])
    c = ga.load_dataset(table, channels=1, window=(100, 151), image_size=16)
    assert c.class_names == ["cyst", "tumour"] and c.labels.tolist() == ds.labels.tolist()
    assert c.tensor().shape == (5, 1, 16, 16) and c.tensor().dtype == torch.uint8
    np.testing.assert_array_equal(c.tensor(), resize_uint8(x, 16))


def test_slice_passes_through_load_dataset(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        write_nifti(tmp_path / cls / "vol.nii.gz", volume(5))
    x = ga.load_dataset(tmp_path, window=IDENTITY, slice=4).tensor()
    assert x.shape == (2, 1, H, W)
    np.testing.assert_array_equal(x[1, 0].numpy(), volume(5)[:, :, 4])
    rgb = ga.load_dataset(tmp_path, window=IDENTITY, channels=3).tensor()
    assert rgb.shape == (2, 3, H, W) and torch.equal(rgb[:, 0], rgb[:, 2])


def test_bad_options_and_files_are_clear_errors(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"not a dataset")
    with pytest.raises(ga.ConfigError, match="window must be"):
        ga.load_dataset(tmp_path, window=40)
    with pytest.raises(ga.ConfigError, match="width must be"):
        ga.load_dataset(tmp_path, window=(40, 0))
    with pytest.raises(ga.ConfigError, match="slice must be an integer"):
        ga.load_dataset(tmp_path, slice="middle")
    with pytest.raises(ga.DataError, match=r"cannot read .*broken\.dcm as DICOM"):
        ga.load_dataset(tmp_path).tensor()


def test_grey_scans_next_to_rgb_pngs_need_channels(scans):
    root, _ = scans
    with pytest.raises(ga.DataError, match=r"differ in shape.*pass channels="):
        ga.load_dataset(root).tensor()  # PNGs decode as RGB unless asked, scans stay grey
    assert ga.load_dataset(root, channels=3).tensor().shape == (5, 3, H, W)


@pytest.mark.parametrize("package, suffix", [("pydicom", "dcm"), ("nibabel", "nii.gz")])
def test_missing_extra_names_the_install_command(tmp_path, monkeypatch, package, suffix):
    (tmp_path / "a").mkdir()
    path = tmp_path / "a" / f"x.{suffix}"
    if suffix == "dcm":
        write_dicom(path, pattern())
    else:
        write_nifti(path, pattern())
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now raises ImportError
    with pytest.raises(ga.DataError, match=rf"needs {package}.*pip install gan-augment\[medical\]"):
        ga.load_dataset(tmp_path).tensor()
