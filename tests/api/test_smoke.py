def test_book_now_creates_booking_conversation_message_and_notification(api, client, make_admin):
    customer = api.register("customer", "Emma")
    therapist = api.provider("therapist")
    answer = api.book(customer, therapist)
    booking, conversation, message = answer["booking"], answer["conversation"], answer["message"]
    assert booking["status"] == "pending"
    assert booking["conversationId"] == conversation["id"] == message["conversationId"]
    assert message["messageType"] == "booking" and message["bookingId"] == booking["id"]
    admin = make_admin()
    inbox = client.get("/api/v1/admin/messages", headers=admin.headers).json()
    assert [m["bookingId"] for m in inbox["items"]] == [booking["id"]]
