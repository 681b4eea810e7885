"""Small edges of the loaders: a pretrained tower's own input size, scans smaller than the crop,
ids used as folder names, and a local LLM without safetensors weights."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support.configs import config_entry
from support.tiny_models import save_tiny_chat_model, tiny_chat_backend_cfg
from hydra import compose, initialize_config_dir
from PIL import Image

from curriculum.backends import BackendError, build_backend
from dataset.images import ImageReadError, ImageTooSmallError, load_scan
from dataset.naming import safe_file_name
from dataset.transforms import build_scan_transform
from evaluation.data import load_model_images
from support.tiny_models import TINY_TEXTS, TINY_VLM_CFG
from models import build_vlm, check_image_token_count

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _save_vit_224(folder: Path) -> Path:
    from transformers import ViTConfig, ViTModel

    ViTModel(ViTConfig(image_size=224, patch_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64), add_pooling_layer=False).save_pretrained(folder)
    return folder


def test_a_224px_pretrained_tower_takes_its_own_size_with_the_default_192px_crop(tmp_path):
    tower = _save_vit_224(tmp_path / "vit224")
    text = [f"model.text_decoder.{k}={v}" for k, v in TINY_VLM_CFG["text_decoder"].items() if k != "tokenizer"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="vision_language_pretraining", overrides=[
            f"paths.root_dir={tmp_path}", f"run_dir={tmp_path}", "model/vision_encoder=pretrained",
            f"model.vision_encoder.path={tower}", *text, "model.text_decoder.tokenizer.vocab_size=400",
            "model.text_decoder.tokenizer.min_frequency=1"])
    assert cfg.dataset.crop_size == 192
    model, processor = build_vlm(cfg.model, TINY_TEXTS)
    assert processor.image_processor.size["height"] == 224
    assert check_image_token_count(model, processor) == 50  # 7x7 patches + CLS
    crop = build_scan_transform(192)(Image.fromarray(np.full((208, 256), 90, np.uint8), "L")).convert("RGB")
    prompt = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"},
                                                                        {"type": "text", "text": "Stage?"}]}])
    batch = processor(images=[crop], text=[prompt], return_tensors="pt")
    assert model(**batch).logits.shape[0] == 1


def test_an_image_smaller_than_the_crop_is_rejected_clearly(tmp_path):
    Image.new("L", (4, 4), 128).save(tmp_path / "tiny.png")
    with pytest.raises(ImageTooSmallError, match=r"4x4 px, smaller than the 192x192 crop"):
        build_scan_transform(192, image_size=(208, 256))(load_scan(tmp_path / "tiny.png"))


def test_evaluation_names_every_unusable_scan(tmp_path):
    Image.new("L", (4, 4), 128).save(tmp_path / "tiny.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    Image.fromarray(np.full((208, 256), 90, np.uint8), "L").save(tmp_path / "good.png")
    rows = pd.DataFrame({"image_id": ["a", "b", "c"],
                         "image_file": [str(tmp_path / n) for n in ("good.png", "tiny.png", "broken.png")]})
    with pytest.raises(ImageReadError, match=r"2 of 3 evaluation images .*b \(.*tiny.png\).*4x4.*c \("):
        load_model_images(rows, {"crop_size": 192, "image_height": 208, "image_width": 256})


@pytest.mark.parametrize("identifier", ["../../escape", "a/b", "..", ".hidden", "", "scan 7:2\\x", "x" * 300])
def test_ids_become_single_safe_path_components(identifier, tmp_path):
    name = safe_file_name(identifier)
    assert name and "/" not in name and "\\" not in name and name not in (".", "..") and len(name) <= 100
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()


def test_safe_ids_are_kept_and_different_unsafe_ids_stay_apart():
    assert safe_file_name("scan_00012") == "scan_00012"
    assert safe_file_name("a/b") != safe_file_name("a_b") != safe_file_name("a:b")


def test_the_local_llm_backend_requires_safetensors(tmp_path):
    folder = save_tiny_chat_model(tmp_path / "llm")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(BackendError, match=r"no model.safetensors .*found pytorch_model.bin"):
        build_backend(tiny_chat_backend_cfg(folder), {})


def test_the_local_llm_backend_names_a_missing_tokenizer(tmp_path):
    folder = save_tiny_chat_model(tmp_path / "llm")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(BackendError, match="missing the tokenizer"):
        build_backend(tiny_chat_backend_cfg(folder), {})


@pytest.mark.slow
def test_saliency_writes_an_unsafe_image_id_inside_its_run_folder(tmp_path):
    from test_saliency_run import _config

    from support.tiny_models import build_saliency_vlm
    from models import save_vlm
    from saliency import run_visual_language_gradcam

    model, processor = build_saliency_vlm()
    saved = save_vlm(model, processor, tmp_path / "models" / "specialist_v5_192px")
    cfg = _config(tmp_path, saved, "dataset.task.report_source=annotation", "dataset.task.max_images=1",
                  "dataset.task.split=null")
    table = tmp_path / "data" / "annotations.csv"
    frame = pd.read_csv(table)
    frame["image_id"] = ["../../escaped/" + str(i) for i in frame["image_id"]]
    frame.to_csv(table, index=False)
    run_visual_language_gradcam(cfg)
    record = json.loads((tmp_path / "run" / "reports.jsonl").read_text().splitlines()[0])
    folder = tmp_path / "run" / record["folder"]
    assert folder.parent == tmp_path / "run" / "images" and (folder / "phrases.json").is_file()
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()
    shutil.rmtree(tmp_path / "run")


def test_training_stops_on_a_scan_smaller_than_the_crop_before_any_training(tmp_path):
    from support.training import training_overrides, write_training_data
    from models.training import run_vision_language_pretraining

    write_training_data(tmp_path)
    Image.new("L", (4, 4), 128).save(tmp_path / "data" / "images" / "scan005.png")
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="vision_language_pretraining", overrides=training_overrides(tmp_path))
    with pytest.raises(ImageTooSmallError, match=r"1 scan\(s\) are smaller than the 192x192 crop.*scan005 \(4x4 px\)"):
        run_vision_language_pretraining(cfg)
    assert not (tmp_path / "outputs" / "models").exists()


def test_truncated_and_nan_scans(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (208, 256), dtype=np.uint8), "L").save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:300])
    with pytest.raises(ImageReadError, match="cut.png"):
        load_scan(tmp_path / "cut.png")
    pixels = np.linspace(0, 1, 208 * 256, dtype=np.float32).reshape(208, 256)
    pixels[:10] = np.nan
    Image.fromarray(pixels, mode="F").save(tmp_path / "nan.tif")
    scan = np.asarray(load_scan(tmp_path / "nan.tif"))
    assert scan.dtype == np.uint8 and scan.max() == 255


def test_evaluation_skips_unusable_test_images_only_when_asked(tmp_path, caplog):
    import logging

    from dataset.annotations import AnnotationError
    from evaluation.data import load_evaluation_table
    from support.tables import write_tiny_dataset

    table = write_tiny_dataset(tmp_path / "data")
    (tmp_path / "data" / "images" / "test1.png").write_bytes(b"not a png")
    Image.new("L", (4, 4), 128).save(tmp_path / "data" / "images" / "test2.png")
    dataset = {**config_entry("dataset", "retina"), "annotations_file": str(table), "images_dir": str(table.parent)}
    with pytest.raises(AnnotationError, match="test1"):
        load_evaluation_table(dataset, "test")
    with caplog.at_level(logging.WARNING):
        _, rows = load_evaluation_table({**dataset, "unreadable_images": "skip"}, "test")
    assert list(rows["image_id"]) == ["test0", "test3", "test4", "test5"]
    assert "skipping test image test1" in caplog.text and "4x4 px" in caplog.text
    assert "2 of 6 test images left out: test1, test2" in caplog.text
    with pytest.raises(ValueError, match="dataset.unreadable_images='sometimes' is unknown"):
        load_evaluation_table({**dataset, "unreadable_images": "sometimes"}, "test")


def test_a_folder_of_mixed_files_reads_every_usable_scan_and_names_each_other_file(tmp_path, caplog):
    import logging

    from evaluation.demo import find_images, read_demo_images

    rng = np.random.default_rng(0)
    good = {"gray8.png": Image.fromarray(rng.integers(0, 255, (208, 256), dtype=np.uint8), "L"),
            "gray16.png": Image.fromarray(rng.integers(0, 65535, (208, 256)).astype(np.uint16)),
            "rgb.jpg": Image.new("RGB", (300, 240), (40, 80, 120)),
            "palette.png": Image.new("RGB", (256, 208), (9, 99, 199)).convert("P"),
            "gray.bmp": Image.new("L", (256, 208), 30), "alpha.png": Image.new("RGBA", (256, 208)),
            "float.tif": Image.fromarray(rng.random((208, 256)).astype(np.float32), "F"),
            "square.tiff": Image.new("L", (192, 192), 60)}
    for name, image in good.items():
        image.save(tmp_path / name)
    Image.new("L", (4, 4)).save(tmp_path / "tiny.png")
    Image.new("L", (191, 400)).save(tmp_path / "narrow.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not a scan")
    (tmp_path / "cut.png").write_bytes((tmp_path / "gray8.png").read_bytes()[:300])
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "rgb.jpg").read_bytes()[:200])
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "notes.txt").write_text("scanner notes")
    with caplog.at_level(logging.WARNING):
        paths = find_images(tmp_path)
        kept, images, unreadable = read_demo_images(paths, build_scan_transform(192, image_size=(208, 256)))
    assert sorted(p.name for p in kept) == sorted(good)
    assert all(image.size == (192, 192) for image in images)
    reasons = {Path(u["file"]).name: u["reason"] for u in unreadable}
    assert sorted(reasons) == ["cut.jpg", "cut.png", "empty.png", "narrow.png", "text.jpg", "tiny.png"]
    assert reasons["empty.png"] == "the file is empty (0 bytes)"
    assert "191x400 px, smaller than the 192x192 crop" in reasons["narrow.png"]
    assert reasons["text.jpg"] == "cannot read image: cannot identify image file"
    assert all(str(tmp_path) not in reason for reason in reasons.values()), reasons
    assert "not images by their suffix" in caplog.text and "notes.txt" in caplog.text


def test_a_decompression_bomb_is_refused_by_name(tmp_path):
    Image.new("1", (15000, 12500)).save(tmp_path / "bomb.png")  # 187.5 megapixels in 23 kB
    with pytest.raises(ImageReadError, match=r"bomb.png: Image size \(187500000 pixels\) exceeds limit"):
        load_scan(tmp_path / "bomb.png")
