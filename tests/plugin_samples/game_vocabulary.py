"""A third-party vocabulary plugin: a game studio's terms, with an alias."""

from backpack import hookimpl

GAME_CONTEXT = "https://games.example/ns/v1"


@hookimpl
def register_vocabularies(register):
    register(
        GAME_CONTEXT,
        {
            "@context": {
                "game": "https://games.example/ns#",
                "Level": "game:Level",
                "difficulty": {"@id": "game:difficulty", "@type": "http://www.w3.org/2001/XMLSchema#integer"},
                "spawnPoint": {"@id": "game:spawnPoint", "@type": "@id"},
            }
        },
        description="levels and spawn points",
        aliases=["http://games.example/ns/v1"],
    )
