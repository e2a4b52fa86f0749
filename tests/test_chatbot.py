"""The example chatbot backend end to end against a running service."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from examples.chatbot import ChatBot, Reply
from rnnserve_client import AsyncClient
from tests.conftest import ROOT, Server

HANDLERS = {"weather": lambda m: "forecast", "music": lambda m: "playing"}


def replies(server: Server, messages: list[str], **options) -> list[Reply]:
    async def run() -> list[Reply]:
        async with AsyncClient(server.url) as client:
            bot = ChatBot(client, HANDLERS, **options)
            return [await bot.reply(m) for m in messages]

    return asyncio.run(run())


def test_messages_are_routed_by_intent(server: Server) -> None:
    weather, music = replies(server, ["will it rain in oslo tomorrow", "play some jazz"], escalate_negative=1.1)
    assert (weather.route, weather.text) == ("weather", "forecast")
    assert (music.route, music.text) == ("music", "playing")
    assert weather.intent.label == "weather" and weather.sentiment.label in ("positive", "negative")


def test_unhandled_or_unsure_intents_fall_back_with_suggestions(server: Server) -> None:
    [unsure] = replies(server, ["will it rain in oslo tomorrow"], min_confidence=1.01, escalate_negative=1.1)
    assert unsure.route == "fallback" and "weather" in unsure.text  # the likely intents are offered
    bot_without_weather = {"music": HANDLERS["music"]}

    async def run() -> Reply:
        async with AsyncClient(server.url) as client:
            return await ChatBot(client, bot_without_weather, escalate_negative=1.1).reply("will it rain in oslo")

    reply = asyncio.run(run())
    assert reply.route == "fallback" and reply.text.startswith("Sorry")


def test_unhappy_users_go_to_a_person(server: Server) -> None:
    [reply] = replies(server, ["this film was awful"], escalate_negative=0.5)
    assert reply.sentiment.label == "negative"
    assert reply.route == "human"


def test_command_line_chat(server: Server) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.chatbot", "--url", server.url],
        input="will it rain in oslo tomorrow\n\nplay some jazz\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("[") for line in lines)
