"""Every built-in recommender and the helpers they share.

Item-kNN, RP3beta, user-kNN, ALS, BPR, EASE, popularity, embeddings, hybrid; fitting and the popularity fill.
"""
