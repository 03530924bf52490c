"""The outbox: every committed change has its events, numbered without gaps per user."""

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from pesan.live.models import UserEvent, UserEventCounter


def seqs_of(app, user_id: str) -> list[int]:
    with app.state.db.reader() as session:
        return list(
            session.scalars(
                select(UserEvent.seq).where(UserEvent.user_id == user_id).order_by(UserEvent.seq)
            )
        )


def test_concurrent_sends_number_each_users_events_without_gaps(app, api, client):
    customer, therapist = api.register("customer"), api.provider()
    conversation_id = api.book(customer, therapist)["conversation"]["id"]

    def send(i: int) -> int:
        who = customer if i % 2 else therapist
        return api.send(who, conversation_id, f"message {i}").status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(send, range(30)))
    assert statuses == [201] * 30
    for user in (customer, therapist):
        seqs = seqs_of(app, user.id)
        assert seqs == list(range(1, len(seqs) + 1))
        # Book Now: booking.created, message.created, conversation.updated; then per send
        # message.created and conversation.updated
        assert len(seqs) == 3 + 30 * 2
        with app.state.db.reader() as session:
            counter = session.get(UserEventCounter, user.id)
            assert counter is not None and counter.last_seq == seqs[-1]


def test_a_failed_change_leaves_no_event(app, api, client):
    customer, therapist = api.register("customer"), api.provider()
    booking = api.book(customer, therapist)["booking"]
    before = seqs_of(app, customer.id)
    # the customer may not accept: 403, nothing changes, no event
    assert api.act(customer, booking["id"], "accept").status_code == 403
    assert api.send(customer, booking["conversationId"], "   ").status_code == 422
    assert seqs_of(app, customer.id) == before


def test_events_go_only_to_the_parties(app, api, client):
    customer, therapist, outsider = api.register("customer"), api.provider(), api.register("hotel")
    answer = api.book(customer, therapist)
    api.send(customer, answer["conversation"]["id"], "hello")
    assert seqs_of(app, outsider.id) == []
    with app.state.db.reader() as session:
        users = set(session.scalars(select(UserEvent.user_id)))
    assert users == {customer.id, therapist.id}


def test_a_sends_events_carry_what_each_party_reads_of_the_message_and_conversation(
    app, api, client
):
    """The events are built from the send's own values (not read back): they must still
    say exactly what the API answers each party afterwards."""
    customer, therapist = api.register("customer"), api.provider()
    conversation_id = api.book(customer, therapist)["conversation"]["id"]
    sent = api.send(therapist, conversation_id, "Saya berangkat sekarang").json()
    for user in (customer, therapist):
        with app.state.db.reader() as session:
            newest = {
                e.type: e.payload
                for e in session.scalars(
                    select(UserEvent).where(UserEvent.user_id == user.id).order_by(UserEvent.seq)
                )
            }
        answered = client.get(f"/api/v1/conversations/{conversation_id}", headers=user.headers)
        assert answered.status_code == 200
        assert newest["message.created"] == sent
        assert newest["conversation.updated"] == answered.json()
