"""Every selector, path and URL pattern the browser adapter relies on, mirroring x.com's DOM.

When X changes its markup, this is the one file to edit.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------------------------- paths
COMPOSE_PATH = "/compose/post"
HOME_PATH = "/home"
LOGIN_PATH_PREFIXES = ("/i/flow/login", "/login", "/logout", "/i/flow/signup", "/account/access")
SEARCH_PATH = "/search"  # ?q=...&src=typed_query&f=live


def profile_path(username: str) -> str:
    return f"/{username}"


def profile_with_replies_path(username: str) -> str:
    return f"/{username}/with_replies"


def status_path(username: str, tweet_id: str) -> str:
    return f"/{username}/status/{tweet_id}"


# ---------------------------------------------------------------------------------- network patterns
GRAPHQL_MARKER = "/i/api/graphql/"
CREATE_TWEET_OPERATION = "/CreateTweet"
TIMELINE_OPERATIONS = (
    "/UserTweets",
    "/UserTweetsAndReplies",
    "/SearchTimeline",
    "/TweetDetail",
    "/HomeTimeline",
    "/HomeLatestTimeline",
)

# ------------------------------------------------------------------------------------------- compose
COMPOSE_TEXTAREA = '[data-testid="tweetTextarea_0"]'
COMPOSE_BUTTON = '[data-testid="tweetButton"], [data-testid="tweetButtonInline"]'
COMPOSE_DIALOG = '[role="dialog"]'
TOAST = '[data-testid="toast"]'
TOAST_STATUS_LINK = '[data-testid="toast"] a[href*="/status/"]'

# -------------------------------------------------------------------------------------------- tweets
TWEET = 'article[data-testid="tweet"]'
TWEET_TEXT = '[data-testid="tweetText"]'
USER_NAME = '[data-testid="User-Name"]'
TWEET_TIME_LINK = 'a[href*="/status/"]:has(time)'
TIME = "time"
REPLY = '[data-testid="reply"]'
RETWEET = '[data-testid="retweet"], [data-testid="unretweet"]'
LIKE = '[data-testid="like"], [data-testid="unlike"]'
BOOKMARK = '[data-testid="bookmark"], [data-testid="removeBookmark"]'
VIEWS = 'a[href$="/analytics"]'
QUOTES = 'a[href$="/quotes"]'
ACTION_GROUP = '[role="group"]'
COUNT_TEXT = '[data-testid="app-text-transition-container"]'
SOCIAL_CONTEXT = '[data-testid="socialContext"]'

# ----------------------------------------------------------------------------------- page conditions
PRIMARY_COLUMN = '[data-testid="primaryColumn"]'
LOGGED_IN_MARKERS = '[data-testid="SideNav_AccountSwitcher_Button"], [data-testid="AppTabBar_Home_Link"]'
LOGIN_MARKERS = '[data-testid="loginButton"], input[autocomplete="username"], [data-testid="login"]'
ERROR_DETAIL = '[data-testid="error-detail"]'
#: X marks an empty timeline or search with its empty-state header (often without the older wrapper)
EMPTY_STATE = '[data-testid="emptyState"], [data-testid="empty_state_header_text"]'
EMPTY_STATE_HEADER = '[data-testid="empty_state_header_text"]'
#: what X's empty state says when a timeline or a search is really empty (lower case, either apostrophe). Any
#: other empty state ("this account doesn't exist", "these posts are protected", "account suspended"...) or
#: any page that shows neither tweets nor one of these is *unreadable*, never an empty timeline.
EMPTY_TIMELINE_TEXTS = (
    "hasn’t posted",
    "hasn't posted",
    "no results for",
    "hasn’t replied",
    "hasn't replied",
)
SOMETHING_WRONG = '[role="alert"]:has-text("Something went wrong. Try reloading")'
MISSING_TEXTS = (
    "this page doesn’t exist",
    "this page doesn't exist",
    "this post is unavailable",
    "this post was deleted",
    "this account doesn’t exist",
    "this account doesn't exist",
)

# Any of these means the page has settled: tweets, an empty state or an error.
PAGE_SETTLED = f"{TWEET}, {ERROR_DETAIL}, {EMPTY_STATE}, {LOGIN_MARKERS}"

# Handed to the in-page extraction script in one piece.
ARTICLE_SELECTORS: dict[str, str] = {
    "tweet": TWEET,
    "text": TWEET_TEXT,
    "user": USER_NAME,
    "time_link": TWEET_TIME_LINK,
    "reply": REPLY,
    "retweet": RETWEET,
    "like": LIKE,
    "bookmark": BOOKMARK,
    "views": VIEWS,
    "quotes": QUOTES,
    "group": ACTION_GROUP,
    "social": SOCIAL_CONTEXT,
}
