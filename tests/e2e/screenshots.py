"""Screenshots of the main pages for docs/screenshots/, at phone and desktop sizes, in
Indonesian and English: `bash scripts/screenshots`. A server with the demo marketplace runs
on a free port of 127.0.0.1; nothing is fetched from anywhere else."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.live.conftest import Rest, start_server

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def sign_in(base: str, email: str) -> str:
    r = Rest(base).http.post("/auth/login", json={"email": email, "password": "pesan-demo"})
    r.raise_for_status()
    return str(r.json()["token"])


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    env = {**os.environ, "PESAN_DATA_DIR": str(folder / "data")}
    env.pop("PESAN_DATABASE_URL", None)
    subprocess.run([sys.executable, "-m", "pesan", "demo"], env=env, check=True, timeout=120)
    server = start_server({"PESAN_DATA_DIR": str(folder / "data")}, folder)
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        tokens = {who: sign_in(server.base, f"{who}@example.com") for who in ("emma", "made")}
        tokens["admin"] = sign_in(server.base, "admin@example.com")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            shots(browser, server.base, tokens)
            browser.close()
    finally:
        server.stop()


def page_for(browser, base, size, lang, token=None):
    context = browser.new_context(base_url=base, viewport=size, device_scale_factor=1)
    cookies = [{"name": "pesan_lang", "value": lang, "url": base}]
    if token:
        cookies.append({"name": "pesan_session", "value": token, "url": base})
    context.add_cookies(cookies)
    return context.new_page()


def shoot(page, name):
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(OUT / f"{name}.png"))
    print("wrote", OUT / f"{name}.png")


def shots(browser, base, tokens):
    # A booking from Emma to Made, so the chat and the dashboard have something to show.
    emma = page_for(browser, base, PHONE, "id", tokens["emma"])
    emma.goto("/?q=Ketut")
    emma.locator(".provider a").first.click()
    ketut_id = emma.url.rsplit("/", 1)[1]
    emma.goto("/?q=Made")
    emma.locator(".provider a").first.click()
    profile_url = emma.url
    made_id = profile_url.rsplit("/", 1)[1]
    emma.get_by_role("link", name="Pesan Sekarang").click()
    emma.get_by_label("Nomor kamar atau vila (hotel atau vila)").fill("Villa 3")
    emma.get_by_label("Catatan untuk penyedia").fill("Gerbang biru, parkir di depan.")
    emma.get_by_role("button", name="Pesan Sekarang").click()
    emma.wait_for_url("**/chat/**")
    chat_url = emma.url.split("#")[0]
    emma.get_by_role("textbox", name="Pesan").fill("Halo Made, saya di Villa 3. Terima kasih!")
    emma.get_by_role("button", name="Kirim").click()
    emma.locator(".msg.mine").last.wait_for()

    for lang in ("id", "en"):
        for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
            if size_name == "desktop" and lang == "id":
                continue
            visitor = page_for(browser, base, size, lang)
            visitor.goto("/")
            shoot(visitor, f"{size_name}-{lang}-directory")
            visitor.goto(profile_url)
            shoot(visitor, f"{size_name}-{lang}-profile")
            customer = page_for(browser, base, size, lang, tokens["emma"])
            customer.goto(profile_url + "/book?mode=now")
            shoot(customer, f"{size_name}-{lang}-book-now")
            if size_name == "phone":
                customer.goto(profile_url.replace(made_id, ketut_id) + "/book?mode=scheduled")
                customer.locator("#start_at").scroll_into_view_if_needed()
                shoot(customer, f"{size_name}-{lang}-schedule")
            customer.goto(chat_url)
            customer.locator("body[data-live=live]").wait_for()
            shoot(customer, f"{size_name}-{lang}-chat-customer")
            therapist = page_for(browser, base, size, lang, tokens["made"])
            therapist.goto("/dashboard")
            shoot(therapist, f"{size_name}-{lang}-dashboard")
            admin = page_for(browser, base, size, lang, tokens["admin"])
            admin.goto("/admin/status")
            shoot(admin, f"{size_name}-{lang}-admin-status")


if __name__ == "__main__":
    main()
