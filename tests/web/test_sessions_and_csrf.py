"""Sign up, sign in and out with a session cookie; CSRF on every web form; the API untouched."""

from fastapi.testclient import TestClient

from tests.problems import assert_problem


def test_sign_in_sets_an_httponly_lax_session_cookie_that_the_api_token_is(visitor, api):
    customer = api.register("customer")
    r = visitor.sign_in(customer)
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("pesan_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    token = visitor.client.cookies["pesan_session"]
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["id"] == customer.id
    page = visitor.get("/")
    assert "Keluar" in page.text  # signed in: "Sign out" in Indonesian


def test_the_session_cookie_is_secure_behind_https(app, api):
    customer = api.register("customer")
    with TestClient(app, base_url="https://testserver") as client:
        page = client.get("/signin")
        assert "Secure" in page.headers["set-cookie"]  # the CSRF cookie
        token = page.text.split('name="csrftoken" value="')[1].split('"')[0]
        r = client.post(
            "/signin",
            data={"csrftoken": token, "email": customer.email, "password": "correct horse"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]


def test_wrong_password_is_a_sentence_on_the_form_not_json(visitor, api):
    customer = api.register("customer")
    visitor.language("en")
    r = visitor.post("/signin", {"email": customer.email, "password": "nope nope"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/html")
    assert "Wrong email or password. Check both and try again." in r.text


def test_sign_up_makes_an_account_and_signs_in(visitor, api):
    r = visitor.post(
        "/signup",
        {
            "name": "Wayan",
            "email": "wayan@example.com",
            "password": "long enough",
            "role": "therapist",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    assert visitor.get("/dashboard").status_code == 200
    again = visitor.post(
        "/signup",
        {
            "name": "Wayan",
            "email": "wayan@example.com",
            "password": "long enough",
            "role": "customer",
        },
    )
    assert again.status_code == 409
    assert "Sudah ada akun dengan email itu." in again.text


def test_sign_up_refuses_a_short_password_with_a_hint(visitor):
    visitor.language("en")
    r = visitor.post(
        "/signup", {"name": "A", "email": "a@example.com", "password": "short", "role": "customer"}
    )
    assert r.status_code == 422
    assert "A password has at least 8 characters." in r.text


def test_sign_out_revokes_the_token(visitor, api):
    customer = api.register("customer")
    visitor.sign_in(customer)
    token = visitor.client.cookies["pesan_session"]
    r = visitor.post("/signout")
    assert r.status_code == 303
    assert 'pesan_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_a_form_without_the_csrf_token_is_refused_with_a_page(visitor, api):
    customer = api.register("customer")
    visitor.get("/signin")  # has the CSRF cookie, but sends no token
    visitor.language("en")
    for path in ("/signin", "/signout", "/lang", "/signup"):
        r = visitor.client.post(
            path, data={"email": customer.email, "password": "correct horse", "lang": "en"}
        )
        assert r.status_code == 403, path
        assert "came from another site" in r.text
    # a token from elsewhere is no better
    r = visitor.client.post("/signin", data={"csrftoken": "forged", "email": customer.email})
    assert r.status_code == 403
    # and with no cookie at all, still refused
    visitor.client.cookies.clear()
    r = visitor.client.post("/lang", data={"lang": "en"})
    assert r.status_code == 403


def test_a_script_sends_the_token_as_a_header(visitor, api):
    customer, provider = api.register("customer"), api.provider()
    conversation = api.book(customer, provider)["conversation"]["id"]
    visitor.sign_in(customer)
    headers = {"x-requested-with": "pesan"}
    r = visitor.client.post(
        f"/chat/{conversation}/messages", data={"content": "Halo"}, headers=headers
    )
    assert r.status_code == 403
    headers["x-csrftoken"] = visitor.csrf
    r = visitor.client.post(
        f"/chat/{conversation}/messages", data={"content": "Halo"}, headers=headers
    )
    assert r.status_code == 200 and r.json()["content"] == "Halo"


def test_the_api_keeps_bearer_tokens_and_problem_json_with_web_cookies_around(visitor, api):
    customer = api.register("customer")
    visitor.sign_in(customer)
    # a browser that holds web cookies but no bearer token: the API says 401 problem+json
    r = visitor.client.post("/api/v1/bookings", json={})
    assert_problem(r, 401, "not_authenticated")
    r = visitor.client.get("/api/v1/nope")
    assert_problem(r, 404, "not_found")


def test_language_choice_is_remembered(visitor):
    assert 'lang="id"' in visitor.get("/").text
    r = visitor.post("/lang", {"lang": "en", "next": "/signin"})
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    assert "pesan_lang=en" in r.headers["set-cookie"]
    page = visitor.get("/signin")
    assert 'lang="en"' in page.text and ">Sign in</button>" in page.text
    # never an open redirect
    r = visitor.post("/lang", {"lang": "id", "next": "//evil.example/"})
    assert r.headers["location"] == "/"
