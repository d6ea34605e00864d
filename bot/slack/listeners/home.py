"""The App Home tab: the user's sessions, their average over time, weakest topics, what is due for
review, and buttons to start an interview or a review."""
from __future__ import annotations

from bot.slack.core import DEFAULT_COUNT, InterviewCore
from bot.slack.listeners.interview import post, publish_home, reporting, start_session


def register(app, core: InterviewCore) -> None:
    @app.event("app_home_opened")
    def home_opened(event, client):
        if event.get("tab") == "home":
            publish_home(core, client, event["user"])

    def ack_start(ack):
        ack()

    def start_from_home(body, client):
        user = body["user"]["id"]
        # Posting to a user id lands in the app's DM with them (the Messages tab).
        with reporting(lambda b, t: post(client, user, b, t)):
            start_session(core, client, user=user, channel=user, topic=None, count=DEFAULT_COUNT)
        publish_home(core, client, user)

    app.action("start_interview")(ack=ack_start, lazy=[start_from_home])

    def review_from_button(body, client):
        """"Review now" (App Home, or the weekly reminder): the questions due, in the DM."""
        user = body["user"]["id"]
        with reporting(lambda b, t: post(client, user, b, t)):
            start_session(core, client, user=user, channel=user, topic=None, count=DEFAULT_COUNT, mode="review")
        publish_home(core, client, user)

    app.action("review_now")(ack=ack_start, lazy=[review_from_button])
