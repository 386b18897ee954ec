"""Deterministic synthetic ratings shaped like MovieLens-1M joined with its users and movies.

Layout
    The columns of the MovieLens sample DeepCTR uses (:data:`COLUMNS`): ``user_id``,
    ``movie_id``, ``rating`` (1..5), ``timestamp`` (seconds, 2000-2003), ``title``
    (``"Movie 123 (1994)"``), ``genres`` (1 to 6 of the 18 MovieLens genres, '|'-joined in
    :data:`GENRES` order), ``gender`` (M/F), ``age`` (the 7 MovieLens age groups),
    ``occupation`` (0..20) and ``zip`` (5 digits, a few with a ``-1234`` suffix). Every row is
    generated; none comes from MovieLens.

World
    A seed fixes :data:`N_USERS` users (ids among 1..6040, demographics drawn from rough
    MovieLens frequencies) and :data:`N_MOVIES` movies (ids among 1..3952, genres drawn with
    MovieLens-like popularity, flatter, so there are ~1,000 genre combinations). Users' activity
    and movies' popularity are log-normal, so most movies have a handful of ratings and
    ``movie_id`` alone cannot learn a movie's quality; its genres can.

Rating
    ``rating = clip(round(planted + noise), 1, 5)`` with noise ``N(0, NOISE_SD)`` and ::

        planted = 3.5 + b_user + b_movie                  # biases
                + mean_{g in genres} e_g                  # genre effects
                + taste_user . mean_{g in genres} v_g     # user x genre
                + p_user . q_movie                        # user x movie, small

    ``taste_user`` is partly shared by users of the same gender and age group and partly
    personal. :func:`planted_rating` returns ``planted`` for any rows of a seed's world.
"""
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd

DEFAULT_TRAIN_ROWS = 20_000
DEFAULT_TEST_ROWS = 5_000
DEFAULT_SEED = 2024

COLUMNS = ("user_id", "movie_id", "rating", "timestamp", "title", "genres", "gender", "age",
           "occupation", "zip")
LABEL_COL = "rating"
GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western")

SCHEMA = {
    "label": LABEL_COL, "task": "regression", "id": None, "sep": ",", "header": True, "names": None,
    "default_kind": "categorical",
    "columns": {
        "genres": {"kind": "sequence", "sep": "|", "max_len": 6, "pooling": "mean"},
        "zip": {"kind": "hashed", "buckets": 1000},
        "timestamp": {"kind": "ignore"},
        "title": {"kind": "ignore"},
    },
}

# --- the world's shape (rough MovieLens-1M frequencies) -------------------------------------
N_USERS = 1_000
N_MOVIES = 3_500
MAX_USER_ID = 6_040
MAX_MOVIE_ID = 3_952
# Relative frequency of each genre among movies, in GENRES order: Drama and Comedy lead as in
# MovieLens, but flatter, and movies have a few more genres (below), so that there are ~1,000
# genre combinations, most with few movies: the combination as one value generalises poorly.
GENRE_WEIGHTS = (3.2, 2.2, 1.4, 2.0, 4.5, 2.1, 1.6, 5.0, 1.2, 1.0, 2.4, 1.4, 1.4, 2.8, 2.2, 3.0,
                 1.6, 1.2)
# P(a movie has 1, 2, ..., 6 genres).
GENRE_COUNT_PROBABILITIES = (0.25, 0.38, 0.24, 0.09, 0.03, 0.01)
AGE_PROBABILITIES = {1: 0.04, 18: 0.18, 25: 0.35, 35: 0.20, 45: 0.09, 50: 0.08, 56: 0.06}
FEMALE_RATE = 0.28
# Relative frequency of occupations 0..20 (0 "other", 4 "college/grad student" lead).
OCCUPATION_WEIGHTS = (12, 9, 4, 3, 13, 2, 4, 11, 0.3, 0.2, 3, 2, 6, 2, 5, 2, 4, 8, 1, 1, 5)
ZIP_SUFFIX_RATE = 0.03
FIRST_TIMESTAMP = 956_620_800  # 2000-04-25
LAST_TIMESTAMP = 1_046_390_400  # 2003-02-28
ACTIVITY_SIGMA = 1.0  # log-normal spread of users' rating counts
POPULARITY_SIGMA = 0.7  # log-normal spread of movies' rating counts

# --- the planted signal (SD: a standard deviation, in rating points) ------------------------
BASE_RATING = 3.5
USER_BIAS_SD = 0.35
MOVIE_BIAS_SD = 0.15
GENRE_EFFECT_SD = 0.6
TASTE_DIM = 4
TASTE_SHARED_SD = 0.3  # per dimension, from gender and from age group
TASTE_PERSONAL_SD = 0.45
LATENT_DIM = 8
LATENT_TERM_SD = 0.2
NOISE_SD = 0.7


class _World(NamedTuple):
    """Users and movies of one seed with their planted parameters; row i of each user array
    belongs to ``users.iloc[i]``, likewise for movies."""
    users: pd.DataFrame  # user_id (sorted), gender, age, occupation, zip
    movies: pd.DataFrame  # movie_id (sorted), title, genres
    genre_weights: np.ndarray  # N_MOVIES * 18, each row sums to 1 over the movie's genres
    user_activity: np.ndarray  # N_USERS, sums to 1
    movie_popularity: np.ndarray  # N_MOVIES, sums to 1
    user_start: np.ndarray  # N_USERS, timestamp of each user's first rating
    user_bias: np.ndarray  # N_USERS
    movie_bias: np.ndarray  # N_MOVIES
    genre_effects: np.ndarray  # 18
    genre_vectors: np.ndarray  # 18 * TASTE_DIM
    user_taste: np.ndarray  # N_USERS * TASTE_DIM
    user_factors: np.ndarray  # N_USERS * LATENT_DIM
    movie_factors: np.ndarray  # N_MOVIES * LATENT_DIM


def _choose(rng, probabilities, size):
    """Indices drawn with the given (unnormalised) probabilities."""
    p = np.asarray(probabilities, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _genre_strings(hot):
    """'|'-joined genre names of each row of the boolean matrix ``hot`` (rows * 18)."""
    names = np.full(len(hot), "", dtype=object)
    for g, genre in enumerate(GENRES):
        names = np.where(hot[:, g], np.where(names == "", genre, names + "|" + genre), names)
    return names


def _sample_genres(rng, n_movies):
    """Boolean movies * 18 matrix: a count from GENRE_COUNT_PROBABILITIES, genres by weight."""
    counts = 1 + _choose(rng, GENRE_COUNT_PROBABILITIES, n_movies)
    # Weighted sampling without replacement: the top ``count`` of log(weight) + Gumbel noise.
    keys = np.log(GENRE_WEIGHTS) + rng.gumbel(size=(n_movies, len(GENRES)))
    ranks = np.argsort(np.argsort(-keys, axis=1), axis=1)
    return ranks < counts[:, None]


def _sample_users(rng):
    user_id = np.sort(rng.choice(np.arange(1, MAX_USER_ID + 1), N_USERS, replace=False))
    zips = np.char.mod("%05d", rng.integers(0, 100_000, N_USERS)).astype(object)
    suffix = np.char.mod("-%04d", rng.integers(0, 10_000, N_USERS)).astype(object)
    return pd.DataFrame({
        "user_id": user_id,
        "gender": np.where(rng.random(N_USERS) < FEMALE_RATE, "F", "M").astype(object),
        "age": np.array(list(AGE_PROBABILITIES))[_choose(rng, list(AGE_PROBABILITIES.values()), N_USERS)],
        "occupation": _choose(rng, OCCUPATION_WEIGHTS, N_USERS),
        "zip": np.where(rng.random(N_USERS) < ZIP_SUFFIX_RATE, zips + suffix, zips),
    })


def _sample_movies(rng):
    movie_id = np.sort(rng.choice(np.arange(1, MAX_MOVIE_ID + 1), N_MOVIES, replace=False))
    # Release years lean to the 1990s as in MovieLens-1M: 2000 minus a gamma-distributed age.
    year = np.maximum(2000 - np.floor(rng.gamma(1.2, 9.0, N_MOVIES)), 1919).astype(np.int64)
    hot = _sample_genres(rng, N_MOVIES)
    title = ("Movie " + movie_id.astype(str).astype(object) + " ("
             + year.astype(str).astype(object) + ")")
    return pd.DataFrame({"movie_id": movie_id, "title": title, "genres": _genre_strings(hot)}), hot


@lru_cache(maxsize=8)
def _world(seed):
    """The users, movies and planted parameters of ``seed`` (shared; do not mutate)."""
    rng = np.random.default_rng(seed).spawn(2)[0]
    users = _sample_users(rng)
    movies, hot = _sample_movies(rng)
    genre_weights = hot / hot.sum(axis=1, keepdims=True)
    user_activity = _normalised(rng.lognormal(0, ACTIVITY_SIGMA, N_USERS))
    movie_popularity = _normalised(rng.lognormal(0, POPULARITY_SIGMA, N_MOVIES))
    user_start = FIRST_TIMESTAMP + (LAST_TIMESTAMP - FIRST_TIMESTAMP) * rng.beta(0.5, 4.0, N_USERS)
    user_bias = rng.normal(0, USER_BIAS_SD, N_USERS)
    movie_bias = rng.normal(0, MOVIE_BIAS_SD, N_MOVIES)
    genre_effects = rng.normal(0, GENRE_EFFECT_SD, len(GENRES))
    # Unit-variance entries over TASTE_DIM, so taste . v_g has about taste's sd per genre.
    genre_vectors = rng.normal(0, TASTE_DIM ** -0.5, (len(GENRES), TASTE_DIM))
    # Rows 0-1: by gender (M, F); rows 2-8: by age group.
    shared_taste = rng.normal(0, TASTE_SHARED_SD, (2 + len(AGE_PROBABILITIES), TASTE_DIM))
    age_group = np.searchsorted(list(AGE_PROBABILITIES), users["age"])
    user_taste = (shared_taste[(users["gender"] == "F").to_numpy(np.int64)] + shared_taste[2 + age_group]
                  + rng.normal(0, TASTE_PERSONAL_SD, (N_USERS, TASTE_DIM)))
    latent_sd = (LATENT_TERM_SD ** 2 / LATENT_DIM) ** 0.25  # p . q then has sd LATENT_TERM_SD
    user_factors = rng.normal(0, latent_sd, (N_USERS, LATENT_DIM))
    movie_factors = rng.normal(0, latent_sd, (N_MOVIES, LATENT_DIM))
    # Centre the genre and taste terms over movies and users, so that the average rating
    # stays near BASE_RATING whatever the seed.
    genre_effects -= (genre_weights @ genre_effects).mean()
    user_taste -= user_taste.mean(axis=0)
    return _World(users, movies, genre_weights, user_activity, movie_popularity, user_start,
                  user_bias, movie_bias, genre_effects, genre_vectors, user_taste, user_factors,
                  movie_factors)


def _normalised(weights):
    return weights / weights.sum()


def _planted(world, u, m):
    """Noiseless rating of users ``u`` for movies ``m`` (index arrays into the world)."""
    genre_weights = world.genre_weights[m]  # n * 18
    taste = np.einsum("nd,nd->n", world.user_taste[u], genre_weights @ world.genre_vectors)
    latent = np.einsum("nk,nk->n", world.user_factors[u], world.movie_factors[m])
    return (BASE_RATING + world.user_bias[u] + world.movie_bias[m]
            + genre_weights @ world.genre_effects + taste + latent)


def _index(ids, known, column):
    """Positions of ``ids`` in the sorted array ``known``; ValueError naming ``column`` if absent."""
    ids = np.asarray(ids, dtype=np.int64)
    position = np.minimum(np.searchsorted(known, ids), len(known) - 1)
    unknown = known[position] != ids
    if unknown.any():
        raise ValueError(f"{column} {ids[unknown][0]} is not in this seed's world")
    return position


def planted_rating(df, seed=DEFAULT_SEED):
    """The noiseless expected rating (before noise and rounding) of each row of ``df``.

    ``df`` needs ``user_id`` and ``movie_id`` of the world of ``seed`` (the seed that made it).
    """
    world = _world(seed)
    u = _index(df["user_id"], world.users["user_id"].to_numpy(), "user_id")
    m = _index(df["movie_id"], world.movies["movie_id"].to_numpy(), "movie_id")
    return _planted(world, u, m)


def _draw_pairs(rng, world, n_rows):
    """``n_rows`` distinct (user, movie) index pairs, users by activity, movies by popularity."""
    draws = n_rows + n_rows // 4 + 100
    while True:
        u = rng.choice(N_USERS, size=draws, p=world.user_activity)
        m = rng.choice(N_MOVIES, size=draws, p=world.movie_popularity)
        _, first = np.unique(u * N_MOVIES + m, return_index=True)
        if len(first) >= n_rows:
            keep = np.sort(first)[:n_rows]
            return u[keep], m[keep]
        draws *= 2


def make_movielens(train_rows=DEFAULT_TRAIN_ROWS, test_rows=DEFAULT_TEST_ROWS, seed=DEFAULT_SEED):
    """Return ``(train_df, test_df)`` with :data:`COLUMNS`; both hold ratings, of distinct
    (user, movie) pairs. The same arguments always give identical frames."""
    if min(train_rows, test_rows) < 0:
        raise ValueError(f"row counts must be >= 0, got train_rows={train_rows}, test_rows={test_rows}")
    if train_rows + test_rows > N_USERS * N_MOVIES // 2:
        raise ValueError(f"at most {N_USERS * N_MOVIES // 2:,} rows (half of the distinct (user, movie) pairs), "
                         f"got {train_rows + test_rows:,}")
    world = _world(seed)
    rng = np.random.default_rng(seed).spawn(2)[1]
    n_rows = train_rows + test_rows
    u, m = _draw_pairs(rng, world, n_rows)
    noisy = _planted(world, u, m) + rng.normal(0, NOISE_SD, n_rows)
    # Each user rates over a few weeks from their first visit, as MovieLens users mostly do.
    timestamp = np.minimum(world.user_start[u] + rng.exponential(30 * 86_400, n_rows), LAST_TIMESTAMP)
    users = world.users.iloc[u].reset_index(drop=True)
    movies = world.movies.iloc[m].reset_index(drop=True)
    df = pd.DataFrame({
        "user_id": users["user_id"],
        "movie_id": movies["movie_id"],
        "rating": np.clip(np.rint(noisy), 1, 5).astype(np.int64),
        "timestamp": timestamp.astype(np.int64),
        "title": movies["title"],
        "genres": movies["genres"],
        "gender": users["gender"],
        "age": users["age"],
        "occupation": users["occupation"],
        "zip": users["zip"],
    })
    return df.iloc[:train_rows].reset_index(drop=True), df.iloc[train_rows:].reset_index(drop=True)
