<?xml version="1.0" encoding="utf-8"?>
<!-- tributary: renders its Atom feeds as a readable page when a browser
     opens a feed URL (the feeds reference this file with an
     xml-stylesheet processing instruction). Feed readers ignore it. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="utf-8" indent="yes"
      doctype-system="about:legacy-compat"/>

  <xsl:template match="/atom:feed">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="atom:title"/> (Atom feed)</title>
        <style>
          :root { color-scheme: light dark; --muted: #666; --line: #ddd; --chip: #eef2f7; --accent: #0b5cad; }
          @media (prefers-color-scheme: dark) { :root { --muted: #aaa; --line: #444; --chip: #2a3038; --accent: #7db4ff; } }
          body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 50rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
          a { color: var(--accent); }
          .notice { border: 1px solid var(--line); border-radius: .5rem; padding: .75rem 1rem; margin-bottom: 1.5rem; }
          .notice code { word-break: break-all; }
          h1 { margin-bottom: .25rem; }
          .meta, .entry .when { color: var(--muted); font-size: .9rem; }
          .entry { border-top: 1px solid var(--line); padding: .9rem 0; }
          .entry h2 { font-size: 1.1rem; margin: 0 0 .2rem; }
          .entry p { margin: .35rem 0; }
          .tag { display: inline-block; background: var(--chip); border-radius: .8rem; padding: 0 .55rem; margin: .15rem .2rem 0 0; font-size: .8rem; }
          .empty { border-left: 3px solid var(--accent); padding: .4rem .8rem; }
          nav { border-top: 1px solid var(--line); padding-top: 1rem; }
        </style>
      </head>
      <body>
        <div class="notice">
          <strong>This is a web feed.</strong>
          Copy its address into your feed reader to subscribe:
          <code><xsl:value-of select="atom:link[@rel='self']/@href"/></code>
        </div>
        <h1><xsl:value-of select="atom:title"/></h1>
        <p class="meta">
          Updated <xsl:value-of select="translate(substring(atom:updated, 1, 16), 'T', ' ')"/> UTC
          · <xsl:value-of select="count(atom:entry)"/> articles on this page
          · <a href="{atom:link[@rel='alternate']/@href}">all feeds</a>
        </p>
        <xsl:apply-templates select="atom:entry"/>
        <xsl:if test="not(atom:entry)">
          <!-- The server says why a first page is empty in the subtitle;
               only a page past the last article has none. -->
          <p class="empty">
            <xsl:choose>
              <xsl:when test="atom:subtitle"><xsl:value-of select="atom:subtitle"/></xsl:when>
              <xsl:otherwise>No older articles.</xsl:otherwise>
            </xsl:choose>
          </p>
        </xsl:if>
        <xsl:if test="atom:link[@rel='next']">
          <nav><a href="{atom:link[@rel='next']/@href}">Older articles →</a></nav>
        </xsl:if>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="atom:entry">
    <article class="entry">
      <h2>
        <xsl:choose>
          <xsl:when test="atom:link[@rel='alternate']">
            <a href="{atom:link[@rel='alternate'][1]/@href}"><xsl:value-of select="atom:title"/></a>
          </xsl:when>
          <xsl:otherwise><xsl:value-of select="atom:title"/></xsl:otherwise>
        </xsl:choose>
      </h2>
      <div class="when">
        <xsl:value-of select="translate(substring(atom:published, 1, 16), 'T', ' ')"/> UTC
        <xsl:if test="atom:source/atom:title"> · <xsl:value-of select="atom:source/atom:title"/></xsl:if>
        <xsl:if test="atom:author/atom:name"> · <xsl:value-of select="atom:author/atom:name"/></xsl:if>
      </div>
      <xsl:if test="atom:summary">
        <p><xsl:value-of select="atom:summary"/></p>
      </xsl:if>
      <xsl:if test="atom:category">
        <div>
          <xsl:for-each select="atom:category">
            <span class="tag"><xsl:value-of select="@label"/></span>
          </xsl:for-each>
        </div>
      </xsl:if>
    </article>
  </xsl:template>
</xsl:stylesheet>
