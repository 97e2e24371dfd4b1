"""The learner's pure math: arms, engagement rate, bandits (Thompson, UCB1) and predictors (ridge, logistic)."""
