#!/usr/bin/env python3
"""The web console in a real browser (headless Chromium through chromedriver and selenium).

  console_browser_check.py HOST:PORT IMAGE.png SCREENSHOT_DIR
  console_browser_check.py rgb HOST:PORT IMAGE.png SCREENSHOT_DIR

Loads GET / from a running `loupe serve`, then: the model card shows the model's test accuracy and
the training curves have one point per epoch (train and validation, loss and accuracy); uploading
IMAGE.png shows the same top class as POST /predict and a heatmap from /explain; a stroke drawn on
the canvas gets a prediction and a heatmap; live operations show a request rate; the page fits a
phone-sized window; the browser console has no errors. Screenshots go to SCREENSHOT_DIR. Prints one
JSON line with what it saw; exits 1 on the first failed check (naming it).

The rgb form runs against a server with two RGB models, `cifar` (32×32×3) and `wide` (24×40×3): the page
says what the selected model takes; IMAGE.png (an RGB image of another size) uploaded to `cifar` shows
/predict?resize=true's top class and a 224-pixel heatmap; with `wide` selected the canvas takes the
model's 24:40 shape and a drawn stroke is sent as 24×40×3 bytes, answered with a prediction and a
200 × 120 heatmap; no console errors.
"""
import json
import os
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


def fail(message):
    print(json.dumps({"failed": message}))
    sys.exit(1)


def start_browser():
    options = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,2000", "--disable-gpu"):
        options.add_argument(a)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    binary = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p)), None)
    if binary:
        options.binary_location = binary
    driver_path = next((p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if os.path.exists(p)), None)
    return webdriver.Chrome(options=options, service=Service(driver_path) if driver_path else None)


def draw_stroke(driver, canvas):
    """A vertical bar down and back up the middle of the canvas."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    chain = ActionChains(driver)
    chain.move_to_element_with_offset(canvas, -20, -50).click_and_hold()
    for _ in range(5):
        chain.move_by_offset(0, 20)
    chain.move_by_offset(40, 0)
    for _ in range(5):
        chain.move_by_offset(0, -20)
    chain.release().perform()


def check_console(driver, seen):
    """Fails on any error the page logged to the browser console."""
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    seen["console_errors"] = [e["message"] for e in errors]
    if errors:
        fail(f"browser console errors: {seen['console_errors']}")


def heatmap_width(driver, wait, previous):
    wait.until(lambda d: d.execute_script("return document.getElementById('heatmap').dataset.url || ''") != previous)
    wait.until(lambda d: d.execute_script("const i = document.getElementById('heatmap'); return !i.hidden && i.complete && i.naturalWidth > 0"))
    return driver.execute_script("return document.getElementById('heatmap').naturalWidth")


def rgb(host, image, shots):
    base = f"http://{host}"
    png = open(image, "rb").read()
    req = urllib.request.Request(base + "/predict?model=cifar&resize=true", data=png, headers={"Content-Type": "image/png"})
    expected_label = json.loads(urllib.request.urlopen(req).read())["predictions"][0]["label"]
    driver = start_browser()
    seen = {}
    try:
        driver.get(base + "/")
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: d.find_element(By.ID, "input-size").text == "32 × 32 RGB")
        seen["cifar_canvas"] = driver.execute_script("const c = document.getElementById('canvas'); return [c.width, c.height]")
        if seen["cifar_canvas"] != [280, 280]:
            fail(f"the canvas is {seen['cifar_canvas']} for a 32×32 model")
        driver.find_element(By.ID, "file-input").send_keys(os.path.abspath(image))
        wait.until(lambda d: d.find_element(By.ID, "top-class").get_attribute("data-label"))
        seen["upload_label"] = driver.find_element(By.ID, "top-class").get_attribute("data-label")
        if seen["upload_label"] != expected_label:
            fail(f"the page shows {seen['upload_label']!r}, POST /predict?resize=true says {expected_label!r}")
        seen["upload_heatmap_width"] = heatmap_width(driver, wait, "")
        if seen["upload_heatmap_width"] != 224:
            fail(f"the heatmap of a 32×32 model is {seen['upload_heatmap_width']} px wide, expected 224")
        driver.save_screenshot(os.path.join(shots, "rgb-upload.png"))

        # The 24×40 model: the canvas takes its shape, and a drawing is sent as 24×40×3 bytes.
        previous = driver.execute_script("return document.getElementById('heatmap').dataset.url")
        Select(driver.find_element(By.ID, "model-select")).select_by_value("wide")
        wait.until(lambda d: d.find_element(By.ID, "input-size").text == "24 × 40 RGB")
        seen["wide_canvas"] = driver.execute_script("const c = document.getElementById('canvas'); return [c.width, c.height]")
        if seen["wide_canvas"] != [280, 168]:
            fail(f"the canvas is {seen['wide_canvas']} for a 24×40 model, expected [280, 168]")
        driver.execute_script("""
            window.sentBytes = null;
            const original = window.fetch;
            window.fetch = (url, init) => {
                if (String(url).startsWith('/predict') && init && init.body && init.body.length !== undefined) window.sentBytes = init.body.length;
                return original(url, init);
            };""")
        draw_stroke(driver, driver.find_element(By.ID, "canvas"))
        driver.find_element(By.ID, "classify-drawing").click()
        seen["drawing_heatmap_width"] = heatmap_width(driver, wait, previous)
        seen["drawing_bytes"] = driver.execute_script("return window.sentBytes")
        if seen["drawing_bytes"] != 24 * 40 * 3:
            fail(f"the drawing was sent as {seen['drawing_bytes']} bytes, the 24×40×3 model takes {24 * 40 * 3}")
        if seen["drawing_heatmap_width"] != 200:
            fail(f"the heatmap of a 24×40 model is {seen['drawing_heatmap_width']} px wide, expected 200")
        seen["error_text"] = driver.find_element(By.ID, "error").text
        if seen["error_text"]:
            fail(f"the page shows an error: {seen['error_text']!r}")
        driver.save_screenshot(os.path.join(shots, "rgb-draw.png"))
        check_console(driver, seen)
    finally:
        driver.quit()
    print(json.dumps(seen))
    return 0


def main(host, image, shots):
    base = f"http://{host}"
    png = open(image, "rb").read()
    req = urllib.request.Request(base + "/predict", data=png, headers={"Content-Type": "image/png"})
    expected_label = json.loads(urllib.request.urlopen(req).read())["predictions"][0]["label"]
    card = json.loads(urllib.request.urlopen(base + "/api/models").read())["models"][0]["card"]
    epochs = len(card["history"])
    accuracy = "%.2f%%" % (100 * card["training"]["testAccuracy"])

    driver = start_browser()
    seen = {}
    try:
        driver.get(base + "/")
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: d.find_element(By.ID, "test-accuracy").text.strip() != "")
        seen["title"] = driver.title
        seen["test_accuracy"] = driver.find_element(By.ID, "test-accuracy").text
        if accuracy not in seen["test_accuracy"]:
            fail(f"the model card shows test accuracy {seen['test_accuracy']!r}, the model file says {accuracy}")
        for chart in ("loss-curve", "accuracy-curve"):
            for series in ("train", "val"):
                n = len(driver.find_elements(By.CSS_SELECTOR, f"svg#{chart} circle.point.{series}"))
                seen[f"{chart}_{series}_points"] = n
                if n != epochs:
                    fail(f"{chart} has {n} {series} points, history.json has {epochs} epochs")

        # Per-class precision and recall from the file's training.testClasses, when it records them.
        metrics = card.get("classMetrics")
        if metrics:
            cells = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in driver.find_elements(By.CSS_SELECTOR, "#per-class tbody tr")]
            seen["per_class_rows"] = len(cells)
            for row, m in zip(cells, metrics):
                if row[0] != m["label"] or row[2] != "%.3f" % m["precision"] or row[3] != "%.3f" % m["recall"]:
                    fail(f"per-class row {row} does not show {m}")

        # Upload a real Fashion-MNIST PNG: the shown top class is /predict's.
        driver.find_element(By.ID, "file-input").send_keys(os.path.abspath(image))
        wait.until(lambda d: d.find_element(By.ID, "top-class").get_attribute("data-label"))
        seen["upload_label"] = driver.find_element(By.ID, "top-class").get_attribute("data-label")
        if seen["upload_label"] != expected_label:
            fail(f"the page shows {seen['upload_label']!r}, POST /predict says {expected_label!r}")
        wait.until(lambda d: d.execute_script("const i = document.getElementById('heatmap'); return !i.hidden && i.complete && i.naturalWidth > 0"))
        seen["heatmap_width"] = driver.execute_script("return document.getElementById('heatmap').naturalWidth")
        seen["topk_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#topk li"))
        seen["server_timing"] = driver.find_element(By.ID, "timing").text
        if "queue;dur=" not in seen["server_timing"]:
            fail(f"no Server-Timing shown: {seen['server_timing']!r}")
        driver.save_screenshot(os.path.join(shots, "upload.png"))

        # Draw a stroke (a vertical bar, like trousers) and classify it.
        first_heatmap = driver.execute_script("return document.getElementById('heatmap').dataset.url")
        canvas = driver.find_element(By.ID, "canvas")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
        chain = ActionChains(driver)
        chain.move_to_element_with_offset(canvas, -40, -100).click_and_hold()
        for dy in range(0, 200, 20):
            chain.move_by_offset(0, 20)
        chain.move_by_offset(40, 0)
        for dy in range(0, 200, 20):
            chain.move_by_offset(0, -20)
        chain.release().perform()
        driver.find_element(By.ID, "classify-drawing").click()
        wait.until(lambda d: d.execute_script("return document.getElementById('heatmap').dataset.url") != first_heatmap)
        wait.until(lambda d: d.execute_script("const i = document.getElementById('heatmap'); return i.complete && i.naturalWidth > 0"))
        seen["drawing_label"] = driver.find_element(By.ID, "top-class").get_attribute("data-label")
        seen["drawing_preview_is_canvas"] = driver.execute_script("return document.getElementById('input-preview').src.startsWith('data:image/png')")
        if not seen["drawing_preview_is_canvas"]:
            fail("the drawing was not what was sent")
        ink = driver.execute_script("""
            const c = document.getElementById('canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n;""")
        seen["drawn_pixels"] = ink
        if ink < 1000:
            fail(f"the stroke left only {ink} light pixels on the canvas")
        driver.save_screenshot(os.path.join(shots, "draw.png"))

        # Live operations refresh from /api/status.
        wait.until(lambda d: d.find_element(By.ID, "ops-rate").text not in ("", "—"))
        seen["ops_rate"] = driver.find_element(By.ID, "ops-rate").text
        seen["ops_latency"] = driver.find_element(By.ID, "ops-latency").text
        seen["class_psi"] = driver.find_element(By.ID, "ops-class-psi").text
        seen["share_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#shares li"))
        driver.save_screenshot(os.path.join(shots, "operations.png"))
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, height + 40)
        time.sleep(0.3)
        driver.save_screenshot(os.path.join(shots, "full.png"))

        # A phone-sized window: no horizontal scrolling.
        driver.set_window_size(390, 844)
        time.sleep(0.5)
        seen["phone_overflow_px"] = driver.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        driver.save_screenshot(os.path.join(shots, "phone.png"))
        if seen["phone_overflow_px"] > 0:
            fail(f"the page is {seen['phone_overflow_px']} px wider than a 390 px phone window")

        # Every form control has a label.
        unlabelled = driver.execute_script("""
            return [...document.querySelectorAll('input, select, button')].filter(e =>
                !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map(e => e.id)""")
        if unlabelled:
            fail(f"controls without a label: {unlabelled}")

        check_console(driver, seen)
    finally:
        driver.quit()
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "rgb":
        sys.exit(rgb(sys.argv[2], sys.argv[3], sys.argv[4]))
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
