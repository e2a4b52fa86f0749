"""An example chatbot backend on rnnserve.

Each message is one request that asks the intent and the sentiment model together. The bot routes
the message to the handler of its intent; when the intent model answers out-of-scope (its fallback
label), names an intent the bot has no handler for, or is not confident enough, the bot says so and
offers the likeliest intents; an unhappy user is handed to a person whatever the intent.

    python -m examples.chatbot --url http://127.0.0.1:8000      # then type messages, one per line
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rnnserve_client import AsyncClient, ClassifierResult

Handler = Callable[[str], str]

# Handlers for the default intent model's SNIPS intents; a real bot calls its own services here.
DEFAULT_HANDLERS: dict[str, Handler] = {
    "AddToPlaylist": lambda message: "Added. Anything else for that playlist?",
    "BookRestaurant": lambda message: "I can book that table. For what time?",
    "GetWeather": lambda message: "Checking the forecast for you.",
    "PlayMusic": lambda message: "Playing it now.",
    "RateBook": lambda message: "Thanks, your rating is saved.",
    "SearchCreativeWork": lambda message: "Searching the catalogue.",
    "SearchScreeningEvent": lambda message: "Looking up showtimes near you.",
}


@dataclass(frozen=True)
class Reply:
    route: str  # the intent handled, "fallback" or "human"
    text: str
    intent: ClassifierResult
    sentiment: ClassifierResult


class ChatBot:
    def __init__(
        self,
        client: AsyncClient,
        handlers: dict[str, Handler] | None = None,
        intent_model: str = "intent",
        sentiment_model: str = "sentiment",
        min_confidence: float = 0.5,
        escalate_negative: float = 0.9,
    ) -> None:
        self.client = client
        self.handlers = DEFAULT_HANDLERS if handlers is None else handlers
        self.intent_model = intent_model
        self.sentiment_model = sentiment_model
        self.min_confidence = min_confidence
        self.escalate_negative = escalate_negative

    async def reply(self, message: str) -> Reply:
        answers = await self.client.ask([message], {self.intent_model: {"top_k": 3}, self.sentiment_model: {}})
        intent = answers[self.intent_model].outputs[0]
        sentiment = answers[self.sentiment_model].outputs[0]
        assert isinstance(intent, ClassifierResult) and isinstance(sentiment, ClassifierResult)
        if sentiment.label == "negative" and sentiment.score >= self.escalate_negative:
            return Reply("human", "I'm sorry about that. Let me get a person to help you.", intent, sentiment)
        handler = self.handlers.get(intent.label)
        if intent.out_of_scope or handler is None or intent.score < self.min_confidence:
            options = [a.label for a in intent.alternatives if a.label in self.handlers]
            suggestion = f" I can help with: {', '.join(options)}." if options else ""
            return Reply("fallback", "Sorry, I can't help with that." + suggestion, intent, sentiment)
        return Reply(intent.label, handler(message), intent, sentiment)


async def chat(url: str, lines: Iterable[str]) -> None:
    async with AsyncClient(url) as client:
        bot = ChatBot(client)
        for line in lines:
            if line.strip():
                reply = await bot.reply(line.strip())
                print(f"[{reply.route}] {reply.text}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    asyncio.run(chat(args.url, sys.stdin))  # one reply per line, as the lines come


if __name__ == "__main__":
    main()
